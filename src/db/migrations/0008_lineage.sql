ALTER TABLE "designs" ADD COLUMN "ancestor_ids" uuid[] DEFAULT '{}'::uuid[] NOT NULL;--> statement-breakpoint
ALTER TABLE "designs" ADD COLUMN "ordered_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "designs" ADD COLUMN "counted_as_ordered" boolean DEFAULT false NOT NULL;--> statement-breakpoint
CREATE INDEX "designs_gallery_ordered_idx" ON "designs" USING btree ("ordered_count" DESC NULLS FIRST,"published_at" DESC NULLS FIRST,"id" DESC NULLS FIRST) WHERE "designs"."is_public" and "designs"."removed_at" is null and "designs"."hidden_at" is null;--> statement-breakpoint
CREATE INDEX "designs_ancestor_ids_idx" ON "designs" USING gin ("ancestor_ids");--> statement-breakpoint
ALTER TABLE "designs" ADD CONSTRAINT "designs_ordered_count_check" CHECK ("designs"."ordered_count" >= 0);