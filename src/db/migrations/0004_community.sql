CREATE TABLE "design_favourites" (
	"design_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "design_favourites_pkey" PRIMARY KEY("design_id","user_id")
);
--> statement-breakpoint
ALTER TABLE "designs" ADD COLUMN "favourite_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "designs" ADD COLUMN "shape" text;--> statement-breakpoint
ALTER TABLE "designs" ADD COLUMN "length" text;--> statement-breakpoint
ALTER TABLE "designs" ADD COLUMN "tags" text[] DEFAULT '{}'::text[] NOT NULL;--> statement-breakpoint
ALTER TABLE "design_favourites" ADD CONSTRAINT "design_favourites_design_id_designs_id_fk" FOREIGN KEY ("design_id") REFERENCES "public"."designs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "design_favourites" ADD CONSTRAINT "design_favourites_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "design_favourites_user_id_created_at_idx" ON "design_favourites" USING btree ("user_id","created_at" DESC NULLS FIRST,"design_id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "designs_gallery_favourite_idx" ON "designs" USING btree ("favourite_count" DESC NULLS FIRST,"published_at" DESC NULLS FIRST,"id" DESC NULLS FIRST) WHERE "designs"."is_public" and "designs"."removed_at" is null;--> statement-breakpoint
CREATE INDEX "designs_gallery_shape_idx" ON "designs" USING btree ("shape","published_at" DESC NULLS FIRST,"id" DESC NULLS FIRST) WHERE "designs"."is_public" and "designs"."removed_at" is null;--> statement-breakpoint
CREATE INDEX "designs_gallery_length_idx" ON "designs" USING btree ("length","published_at" DESC NULLS FIRST,"id" DESC NULLS FIRST) WHERE "designs"."is_public" and "designs"."removed_at" is null;--> statement-breakpoint
CREATE INDEX "designs_tags_idx" ON "designs" USING gin ("tags") WHERE "designs"."is_public" and "designs"."removed_at" is null;--> statement-breakpoint
ALTER TABLE "designs" ADD CONSTRAINT "designs_favourite_count_check" CHECK ("designs"."favourite_count" >= 0);--> statement-breakpoint
ALTER TABLE "designs" ADD CONSTRAINT "designs_shape_check" CHECK ("designs"."shape" is null or "designs"."shape" in ('square', 'squoval', 'round', 'oval', 'almond', 'coffin', 'stiletto'));--> statement-breakpoint
ALTER TABLE "designs" ADD CONSTRAINT "designs_length_check" CHECK ("designs"."length" is null or "designs"."length" in ('short', 'medium', 'long', 'extra_long'));--> statement-breakpoint
ALTER TABLE "designs" ADD CONSTRAINT "designs_tags_check" CHECK (cardinality("designs"."tags") <= 5);