import { fail } from '../../errors.js';
import type { Routed } from '../../db/reader.js';
import type { Storage } from '../../storage/storage.js';
import type { UserRow } from '../users/users.repository.js';
import type { DesignWithImage, DesignsRepository, GalleryFilter } from './designs.repository.js';

const designNotFound = () => fail('DESIGN_NOT_FOUND', 'No such design in the gallery.');

export function createDesignsService(deps: {
  designs: DesignsRepository;
  storage: Storage;
  /** Anonymous reads (the gallery): on the follower when there is a fresh one (db/reader.ts). */
  anonymous: Routed<{ designs: DesignsRepository }>;
}) {
  const { designs, storage } = deps;

  /** Made public and not removed: what anyone may see and comment on. */
  const inGallery = (row: DesignWithImage | undefined): row is DesignWithImage => Boolean(row && row.design.isPublic && !row.design.removedAt);

  async function render({ design, ownerName, imageKey, thumbnailKey }: DesignWithImage) {
    const [imageUrl, thumbnailUrl] = await Promise.all([storage.signedUrl(imageKey), storage.signedUrl(thumbnailKey)]);
    return {
      id: design.id,
      order_id: design.orderId,
      owner: { id: design.ownerId, name: ownerName },
      description: design.description,
      is_public: design.isPublic,
      image_url: imageUrl,
      thumbnail_url: thumbnailUrl,
      reuse_count: design.reuseCount,
      comment_count: design.commentCount,
      published_at: design.publishedAt?.toISOString() ?? null,
      created_at: design.createdAt.toISOString(),
    };
  }

  /** Owners see their own designs (unless removed); everyone else only public ones. Anything else is 404. */
  async function visible(id: string, viewer: UserRow | null) {
    const row = await designs.findById(id);
    if (!row || row.design.removedAt) throw designNotFound();
    if (!row.design.isPublic && row.design.ownerId !== viewer?.id) throw designNotFound();
    return row;
  }

  return {
    visible,
    inGallery,
    async gallery(filter: GalleryFilter) {
      const { rows, total } = await deps.anonymous.read((on) => on.designs.gallery(filter));
      return { items: await Promise.all(rows.map(render)), total };
    },
    async get(id: string, viewer: UserRow | null) {
      return render(await visible(id, viewer));
    },
    async setVisibility(user: UserRow, id: string, isPublic: boolean) {
      if (!(await designs.setVisibility(id, user.id, isPublic))) throw designNotFound();
      return render((await designs.findById(id))!);
    },
    async remove(user: UserRow, id: string) {
      if (!(await designs.remove(id, user.id))) throw designNotFound();
    },
    async inspiration(user: UserRow, id: string, limit: number, offset: number) {
      const row = await designs.findById(id);
      if (!row || row.design.ownerId !== user.id) throw designNotFound();
      const { rows, total } = await designs.usages(id, limit, offset);
      return {
        items: rows.map((r) => ({ user: { id: r.userId, name: r.userName }, order_id: r.orderId, created_at: r.createdAt.toISOString() })),
        total,
      };
    },
  };
}

export type DesignsService = ReturnType<typeof createDesignsService>;
