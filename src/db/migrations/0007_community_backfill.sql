-- Hand-written (drizzle-kit generate --custom): designs made before 0006 take their order's shape and
-- length, which the gallery now filters on (orders never change them, so copying once is exact).
UPDATE "designs" AS d SET "shape" = o."shape", "length" = o."length"
FROM "orders" AS o
WHERE o."id" = d."order_id" AND (d."shape" IS DISTINCT FROM o."shape" OR d."length" IS DISTINCT FROM o."length");
