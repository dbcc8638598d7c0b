import type { Database } from '../../db/client.js';
import { fail } from '../../errors.js';
import type { Routed } from '../../db/reader.js';
import type { Storage } from '../../storage/storage.js';
import type { UserRow } from '../users/users.repository.js';
import type { DesignWithImage, DesignsRepository, GalleryFilter } from './designs.repository.js';

const designNotFound = () => fail('DESIGN_NOT_FOUND', 'No such design in the gallery.');

export function createDesignsService(deps: {
  db: Database;
  designs: DesignsRepository;
  storage: Storage;
  /** Anonymous reads (the gallery): on the follower when there is a fresh one (db/reader.ts). */
  anonymous: Routed<{ designs: DesignsRepository }>;
}) {
  const { designs, storage } = deps;

  /** Made public, not removed and not hidden by moderation: what anyone may see and comment on. */
  const inGallery = (row: DesignWithImage | undefined): row is DesignWithImage =>
    Boolean(row && row.design.isPublic && !row.design.removedAt && !row.design.hiddenAt);

  async function render({ design, ownerName, imageKey, thumbnailKey, rating }: DesignWithImage) {
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
      favourite_count: design.favouriteCount,
      ordered_count: design.orderedCount,
      root_design_id: design.ancestorIds[0] ?? null,
      parent_design_id: design.ancestorIds.at(-1) ?? null,
      shape: design.shape,
      length: design.length,
      tags: design.tags,
      rating_average: rating.average === null ? null : Math.round(Number(rating.average) * 100) / 100,
      rating_count: Number(rating.count),
      published_at: design.publishedAt?.toISOString() ?? null,
      created_at: design.createdAt.toISOString(),
    };
  }

  /** Owners see their own designs (unless removed or hidden by moderation); everyone else only public ones. Anything else is 404. */
  async function visible(id: string, viewer: UserRow | null) {
    const row = await designs.findById(id);
    if (!row || row.design.removedAt || row.design.hiddenAt) throw designNotFound();
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
    /** Idempotent: favouriting a favourite again changes nothing. Only gallery designs; anything else is 404. */
    async favourite(user: UserRow, id: string) {
      await deps.db.transaction(async (tx) => {
        if ((await designs.favourite(id, user.id, tx)) === 'gone') throw designNotFound();
      });
      return render((await designs.findById(id))!);
    },
    /** Idempotent: 204 whether or not it was a favourite, as long as the design is in the gallery or was a favourite. */
    async unfavourite(user: UserRow, id: string) {
      const removed = await deps.db.transaction((tx) => designs.unfavourite(id, user.id, tx));
      if (removed) return;
      const row = await designs.findById(id);
      if (!inGallery(row)) throw designNotFound();
    },
    async favourites(user: UserRow, limit: number, offset: number) {
      const { rows, total } = await designs.favourites(user.id, limit, offset);
      return { items: await Promise.all(rows.map(render)), total };
    },
    /** Replaces the owner's free tags (deduplicated); not theirs, or removed → 404. */
    async setTags(user: UserRow, id: string, tags: string[]) {
      if (!(await designs.setTags(id, user.id, [...new Set(tags)]))) throw designNotFound();
      return render((await designs.findById(id))!);
    },
    async inspiration(user: UserRow, id: string, limit: number, offset: number) {
      const row = await designs.findById(id);
      if (!row || row.design.ownerId !== user.id) throw designNotFound();
      const { rows, total } = await designs.usages(id, limit, offset);
      return {
        items: rows.map((r) => ({
          user: { id: r.userId, name: r.userName },
          order_id: r.orderId,
          created_at: r.createdAt.toISOString(),
          paid_at: r.paidAt?.toISOString() ?? null,
        })),
        total,
      };
    },
  };
}

export type DesignsService = ReturnType<typeof createDesignsService>;
