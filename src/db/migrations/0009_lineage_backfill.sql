-- Hand-written backfill for 0008_lineage: the lineage of designs made before it, and their ordered_count.
-- Each design's ancestors follow its order's source design back to an original (a design whose order reused nothing).
WITH RECURSIVE chain(id, ancestors) AS (
  SELECT d.id, '{}'::uuid[] FROM designs d JOIN orders o ON o.id = d.order_id WHERE o.source_design_id IS NULL
  UNION ALL
  SELECT d.id, c.ancestors || c.id
    FROM chain c JOIN orders o ON o.source_design_id = c.id JOIN designs d ON d.order_id = o.id
)
UPDATE designs SET ancestor_ids = chain.ancestors FROM chain WHERE designs.id = chain.id AND cardinality(chain.ancestors) > 0;
--> statement-breakpoint
-- Orders already paid count once for every design on their chain.
UPDATE designs d SET counted_as_ordered = true
  FROM orders o WHERE o.id = d.order_id AND o.payment_status = 'paid' AND cardinality(d.ancestor_ids) > 0;
--> statement-breakpoint
UPDATE designs a SET ordered_count = n.c
  FROM (SELECT unnest(ancestor_ids) AS id, count(*)::int AS c FROM designs WHERE counted_as_ordered GROUP BY 1) n
  WHERE a.id = n.id;
