import { and, asc, desc, eq, inArray, isNull, type SQL, sql } from '../../db/orm.js';
import type { Executor } from '../../db/client.js';
import { boundedCount, countCap, estimateQuery, totalFrom } from '../../db/pagination.js';
import { byShape, prepared, preparedSql } from '../../db/prepared.js';
import { designFavourites, designTags, galleryRow, designUsages, designs, orderRatings, orders, users } from '../../db/schema.js';
import type { Length, Shape } from '../orders/orders.domain.js';

export type DesignRow = typeof designs.$inferSelect;

export const GALLERY_SORTS = ['published_at', 'reuse_count', 'comment_count', 'favourite_count', 'ordered_count'] as const;
export type GallerySort = (typeof GALLERY_SORTS)[number];

export interface GalleryFilter {
  search?: string;
  shape?: Shape;
  length?: Length;
  tag?: string;
  sort: GallerySort;
  limit: number;
  offset: number;
}

const columns = {
  design: {
    id: designs.id,
    orderId: designs.orderId,
    ownerId: designs.ownerId,
    description: designs.description,
    isPublic: designs.isPublic,
    publishedAt: designs.publishedAt,
    removedAt: designs.removedAt,
    hiddenAt: designs.hiddenAt,
    reuseCount: designs.reuseCount,
    commentCount: designs.commentCount,
    favouriteCount: designs.favouriteCount,
    orderedCount: designs.orderedCount,
    ancestorIds: designs.ancestorIds,
    shape: designs.shape,
    length: designs.length,
    tags: designs.tags,
    createdAt: designs.createdAt,
  },
  ownerName: users.name,
  /**
   * Ratings of the delivered orders made from it: its own order and those of every design derived from it,
   * reuses of reuses included (each derived design's order is one made from its lineage; GIN index on ancestors).
   */
  rating: sql<{ average: string | null; count: number }>`(select json_build_object('average', avg(r.stars), 'count', count(*))
    from ${orderRatings} r where r.order_id = ${designs.orderId}
      or r.order_id in (select dd.order_id from ${designs} dd where dd.ancestor_ids @> array[${designs.id}]))`,
  imageKey: orders.imageKey,
  thumbnailKey: orders.thumbnailKey,
};

export type DesignWithImage = {
  design: Omit<DesignRow, 'searchVector' | 'updatedAt' | 'countedAsOrdered'>;
  ownerName: string;
  rating: { average: string | number | null; count: number };
  imageKey: string;
  thumbnailKey: string;
};

/** In the gallery (schema.ts `galleryRow`): the very predicate of the partial gallery indexes and of design_tags. */
export const inGallery = galleryRow(designs);

export function createDesignsRepository(db: Executor) {
  const withImage = (tx: Executor) =>
    tx
      .select(columns)
      .from(designs)
      .innerJoin(users, eq(users.id, designs.ownerId))
      .innerJoin(orders, eq(orders.id, designs.orderId));

  // The gallery's statements differ only by sort and whether a search is given: each is built and
  // prepared once, its values bound per request (building them took ~0.3 ms of a page's CPU).
  const galleryStatements = byShape(
    (filter: GalleryFilter) =>
      [filter.sort, filter.search ? 'search' : '', filter.shape ? 'shape' : '', filter.length ? 'length' : '', filter.tag ? 'tag' : ''].join('|'),
    (filter: GalleryFilter) => {
      const p = sql.placeholder;
      const conditions: SQL[] = [inGallery];
      if (filter.search) conditions.push(sql`${designs.searchVector} @@ websearch_to_tsquery('english', ${p('search')})`);
      if (filter.shape) conditions.push(sql`${designs.shape} = ${p('shape')}`);
      if (filter.length) conditions.push(sql`${designs.length} = ${p('length')}`);
      // `@>` on the tags array is what the GIN index answers.
      if (filter.tag) conditions.push(sql`${designs.tags} @> array[${p('tag')}]::text[]`);
      const where = and(...conditions);
      const counter = {
        reuse_count: designs.reuseCount,
        comment_count: designs.commentCount,
        favourite_count: designs.favouriteCount,
        ordered_count: designs.orderedCount,
      };
      const order =
        filter.sort === 'published_at'
          ? [desc(designs.publishedAt), desc(designs.id)]
          : [desc(counter[filter.sort]), desc(designs.publishedAt), desc(designs.id)];
      // The page is found on the gallery's partial index (ids only), then joined for its 20 rows alone;
      // joining first would carry owner and image through every row skipped by the offset.
      const page = db.select({ id: designs.id }).from(designs).where(where).orderBy(...order).limit(p('limit')).offset(p('offset')).as('page');
      const rows = prepared(withImage(db).innerJoin(page, eq(page.id, designs.id)).orderBy(...order));
      // A tag alone is counted off design_tags (the gallery's tags, one row each: index-only up to the cap),
      // whatever order it is shown in; its planner estimate comes from that column's own statistics too.
      if (filter.tag && !filter.search && !filter.shape && !filter.length) {
        const tagged = [eq(designTags.tag, p('tag'))];
        return {
          rows,
          count: prepared(boundedCount(db, designTags, tagged, p('cap'), [asc(designTags.designId)])),
          estimate: preparedSql(db, estimateQuery(db, designTags, tagged)),
        };
      }
      // Searches and tags with other filters are counted off their GIN index, whatever order they are shown in.
      const filtered = filter.search || filter.tag;
      return {
        rows,
        count: prepared(boundedCount(db, designs, [where], p('cap'), filtered ? [] : order)),
        estimate: preparedSql(db, estimateQuery(db, designs, [where])),
      };
    },
  );

  /**
   * Counts one more reuse or comment, only while the design is still in the gallery (the conditional
   * update locks its row, so nothing lands on a design its owner is hiding at that moment): false
   * when its owner hid or removed it meanwhile. In the caller's transaction, with what it counts.
   */
  async function countIfInGallery(designId: string, counter: 'reuseCount' | 'commentCount' | 'favouriteCount', tx: Executor): Promise<boolean> {
    const bumped = await tx
      .update(designs)
      .set({ [counter]: sql`${designs[counter]} + 1` })
      .where(and(eq(designs.id, designId), inGallery))
      .returning({ id: designs.id });
    return bumped.length > 0;
  }

  async function shiftOrdered(orderId: string, delta: 1 | -1, tx: Executor): Promise<string[]> {
    const [flipped] = await tx
      .update(designs)
      .set({ countedAsOrdered: delta > 0 })
      .where(and(eq(designs.orderId, orderId), eq(designs.countedAsOrdered, delta < 0), sql`cardinality(${designs.ancestorIds}) > 0`))
      .returning({ ancestorIds: designs.ancestorIds });
    if (!flipped) return [];
    const chain = flipped.ancestorIds;
    await tx.select({ id: designs.id }).from(designs).where(inArray(designs.id, chain)).orderBy(asc(designs.id)).for('update');
    await tx
      .update(designs)
      .set({ orderedCount: sql`${designs.orderedCount} + ${delta}` })
      .where(inArray(designs.id, chain));
    return chain;
  }

  return {
    /** A new order's private design, in the order's transaction. */
    async insert(values: typeof designs.$inferInsert, tx: Executor): Promise<string> {
      const [row] = await tx.insert(designs).values(values).returning({ id: designs.id });
      return row!.id;
    },

    /** A revised order's new description, in the revision's transaction. */
    async updateDescription(orderId: string, description: string, tx: Executor): Promise<void> {
      await tx.update(designs).set({ description }).where(eq(designs.orderId, orderId));
    },

    /** A gallery design that may be reused: in the gallery (public, neither removed nor hidden), with the image of its order. */
    async findReusable(id: string, tx: Executor = db) {
      const [row] = await tx
        .select({
          id: designs.id,
          ownerId: designs.ownerId,
          description: designs.description,
          ancestorIds: designs.ancestorIds,
          imageKey: orders.imageKey,
          thumbnailKey: orders.thumbnailKey,
          shape: orders.shape,
          length: orders.length,
        })
        .from(designs)
        .innerJoin(orders, eq(orders.id, designs.orderId))
        .where(and(eq(designs.id, id), inGallery))
        .limit(1);
      return row;
    },

    countIfInGallery,

    /**
     * A comment leaving (deleted, hidden) or coming back (restored): the count follows whatever the
     * design's state, in the caller's transaction, with the change it counts.
     */
    async shiftCommentCount(designId: string, delta: 1 | -1, tx: Executor): Promise<void> {
      await tx
        .update(designs)
        .set({ commentCount: sql`${designs.commentCount} + ${delta}` })
        .where(eq(designs.id, designId));
    },

    /** Records a reuse of a gallery design (false when it left the gallery meanwhile). */
    async recordUsage(values: { designId: string; orderId: string; userId: string }, tx: Executor): Promise<boolean> {
      if (!(await countIfInGallery(values.designId, 'reuseCount', tx))) return false;
      await tx.insert(designUsages).values(values);
      return true;
    },

    /**
     * Counts a newly paid order once for every design on its chain (the ancestors of the order's own
     * design): the conditional flag makes a second payment event of the same order count nothing, and
     * the ancestors are locked in id order so concurrent payments never deadlock. In the payment's transaction.
     */
    async countOrdered(orderId: string, tx: Executor): Promise<string[]> {
      return shiftOrdered(orderId, 1, tx);
    },

    /** Takes back an order counted by `countOrdered` (a manual payment set back to unpaid); nothing if it was not counted. */
    async uncountOrdered(orderId: string, tx: Executor): Promise<string[]> {
      return shiftOrdered(orderId, -1, tx);
    },

    async findById(id: string, tx: Executor = db): Promise<DesignWithImage | undefined> {
      const [row] = await withImage(tx).where(eq(designs.id, id)).limit(1);
      return row;
    },

    async gallery(filter: GalleryFilter): Promise<{ rows: DesignWithImage[]; total: number }> {
      const statements = galleryStatements(filter);
      const cap = countCap(filter.offset, filter.limit);
      const values = { search: filter.search, shape: filter.shape, length: filter.length, tag: filter.tag, limit: filter.limit, offset: filter.offset, cap };
      const [rows, [counted]] = await Promise.all([statements.rows.execute(values), statements.count.execute(values)]);
      return { rows, total: await totalFrom(counted?.n ?? 0, cap, () => statements.estimate.execute(values)) };
    },

    async setVisibility(id: string, ownerId: string, isPublic: boolean, tx: Executor = db): Promise<boolean> {
      const rows = await tx
        .update(designs)
        .set({
          isPublic,
          // First publication only: re-publishing keeps the design's place in "newest first".
          publishedAt: isPublic ? sql`coalesce(${designs.publishedAt}, now())` : designs.publishedAt,
        })
        .where(and(eq(designs.id, id), eq(designs.ownerId, ownerId), isNull(designs.removedAt)))
        .returning({ id: designs.id });
      return rows.length > 0;
    },

    async remove(id: string, ownerId: string, tx: Executor = db): Promise<boolean> {
      const rows = await tx
        .update(designs)
        .set({ isPublic: false, removedAt: sql`now()` })
        .where(and(eq(designs.id, id), eq(designs.ownerId, ownerId), isNull(designs.removedAt)))
        .returning({ id: designs.id });
      return rows.length > 0;
    },

    /**
     * Adds a customer's favourite of a gallery design, once: the conditional insert and the counter move
     * together in one transaction, so concurrent favourites count exactly. 'added', 'already' (it was a
     * favourite before: nothing changes), or 'gone' when the design is not in the gallery.
     */
    async favourite(designId: string, userId: string, tx: Executor): Promise<'added' | 'already' | 'gone'> {
      const inserted = await tx
        .insert(designFavourites)
        .select(
          tx
            .select({ designId: designs.id, userId: sql`${userId}::uuid`.as('user_id'), createdAt: sql`now()`.as('created_at') })
            .from(designs)
            .where(and(eq(designs.id, designId), inGallery)),
        )
        .onConflictDoNothing()
        .returning({ designId: designFavourites.designId });
      if (inserted.length === 0) {
        const [existing] = await tx
          .select({ designId: designFavourites.designId })
          .from(designFavourites)
          .innerJoin(designs, eq(designs.id, designFavourites.designId))
          .where(and(eq(designFavourites.designId, designId), eq(designFavourites.userId, userId), inGallery))
          .limit(1);
        return existing ? 'already' : 'gone';
      }
      // The conditional update locks the design row: an owner hiding it at this moment wins, and the
      // caller's transaction rolls the favourite back.
      return (await countIfInGallery(designId, 'favouriteCount', tx)) ? 'added' : 'gone';
    },

    /** Removes a favourite if there is one (whatever became of the design since), with its count. */
    async unfavourite(designId: string, userId: string, tx: Executor): Promise<boolean> {
      const deleted = await tx
        .delete(designFavourites)
        .where(and(eq(designFavourites.designId, designId), eq(designFavourites.userId, userId)))
        .returning({ designId: designFavourites.designId });
      if (deleted.length === 0) return false;
      await tx
        .update(designs)
        .set({ favouriteCount: sql`${designs.favouriteCount} - 1` })
        .where(eq(designs.id, designId));
      return true;
    },

    /** A customer's favourites that are still in the gallery, most recently favourited first. */
    async favourites(userId: string, limit: number, offset: number, tx: Executor = db): Promise<{ rows: DesignWithImage[]; total: number }> {
      const where = and(eq(designFavourites.userId, userId), inGallery);
      const [rows, [count]] = await Promise.all([
        withImage(tx)
          .innerJoin(designFavourites, eq(designFavourites.designId, designs.id))
          .where(where)
          .orderBy(desc(designFavourites.createdAt), desc(designFavourites.designId))
          .limit(limit)
          .offset(offset),
        tx
          .select({ total: sql<number>`count(*)::int` })
          .from(designFavourites)
          .innerJoin(designs, eq(designs.id, designFavourites.designId))
          .where(where),
      ]);
      return { rows, total: count?.total ?? 0 };
    },

    /** Replaces the owner's tags on their design (not removed); false when it is not theirs or removed. */
    async setTags(id: string, ownerId: string, tags: string[], tx: Executor = db): Promise<boolean> {
      const rows = await tx
        .update(designs)
        .set({ tags })
        .where(and(eq(designs.id, id), eq(designs.ownerId, ownerId), isNull(designs.removedAt)))
        .returning({ id: designs.id });
      return rows.length > 0;
    },

    async usages(designId: string, limit: number, offset: number, tx: Executor = db) {
      const where = eq(designUsages.designId, designId);
      const [rows, [count]] = await Promise.all([
        tx
          .select({
            userId: designUsages.userId,
            userName: users.name,
            orderId: designUsages.orderId,
            createdAt: designUsages.createdAt,
            paidAt: orders.paidAt,
          })
          .from(designUsages)
          .innerJoin(users, eq(users.id, designUsages.userId))
          .innerJoin(orders, eq(orders.id, designUsages.orderId))
          .where(where)
          .orderBy(desc(designUsages.createdAt), asc(designUsages.id))
          .limit(limit)
          .offset(offset),
        tx.select({ total: sql<number>`count(*)::int` }).from(designUsages).where(where),
      ]);
      return { rows, total: count?.total ?? 0 };
    },
  };
}

export type DesignsRepository = ReturnType<typeof createDesignsRepository>;
