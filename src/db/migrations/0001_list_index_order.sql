DROP INDEX "design_usages_design_id_created_at_idx";--> statement-breakpoint
DROP INDEX "designs_gallery_published_idx";--> statement-breakpoint
DROP INDEX "designs_gallery_reuse_idx";--> statement-breakpoint
DROP INDEX "designs_gallery_comment_idx";--> statement-breakpoint
DROP INDEX "designs_search_vector_idx";--> statement-breakpoint
DROP INDEX "orders_customer_id_created_at_idx";--> statement-breakpoint
DROP INDEX "orders_technician_id_created_at_idx";--> statement-breakpoint
DROP INDEX "orders_unassigned_created_at_idx";--> statement-breakpoint
CREATE INDEX "orders_open_technician_id_idx" ON "orders" USING btree ("technician_id") WHERE "orders"."status" in ('under_review', 'accepted', 'in_production');--> statement-breakpoint
CREATE INDEX "design_usages_design_id_created_at_idx" ON "design_usages" USING btree ("design_id","created_at" DESC NULLS FIRST,"id");--> statement-breakpoint
CREATE INDEX "designs_gallery_published_idx" ON "designs" USING btree ("published_at" DESC NULLS FIRST,"id" DESC NULLS FIRST) WHERE "designs"."is_public" and "designs"."removed_at" is null;--> statement-breakpoint
CREATE INDEX "designs_gallery_reuse_idx" ON "designs" USING btree ("reuse_count" DESC NULLS FIRST,"published_at" DESC NULLS FIRST,"id" DESC NULLS FIRST) WHERE "designs"."is_public" and "designs"."removed_at" is null;--> statement-breakpoint
CREATE INDEX "designs_gallery_comment_idx" ON "designs" USING btree ("comment_count" DESC NULLS FIRST,"published_at" DESC NULLS FIRST,"id" DESC NULLS FIRST) WHERE "designs"."is_public" and "designs"."removed_at" is null;--> statement-breakpoint
CREATE INDEX "designs_search_vector_idx" ON "designs" USING gin ("search_vector") WHERE "designs"."is_public" and "designs"."removed_at" is null;--> statement-breakpoint
CREATE INDEX "orders_customer_id_created_at_idx" ON "orders" USING btree ("customer_id","created_at" DESC NULLS FIRST,"id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "orders_technician_id_created_at_idx" ON "orders" USING btree ("technician_id","created_at" DESC NULLS FIRST,"id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "orders_unassigned_created_at_idx" ON "orders" USING btree ("created_at" DESC NULLS FIRST,"id" DESC NULLS FIRST) WHERE "orders"."technician_id" is null;