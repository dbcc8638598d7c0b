CREATE TABLE "design_favourites" (
	"design_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "design_favourites_pkey" PRIMARY KEY("design_id","user_id")
);
--> statement-breakpoint
CREATE TABLE "moderation_actions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"moderator_id" uuid,
	"design_id" uuid NOT NULL,
	"comment_id" uuid,
	"action" text NOT NULL,
	"note" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "moderation_actions_action_check" CHECK ("moderation_actions"."action" in ('hide', 'restore', 'auto_hide'))
);
--> statement-breakpoint
CREATE TABLE "order_ratings" (
	"order_id" uuid PRIMARY KEY NOT NULL,
	"customer_id" uuid NOT NULL,
	"technician_id" uuid NOT NULL,
	"stars" integer NOT NULL,
	"comment" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "order_ratings_stars_check" CHECK ("order_ratings"."stars" between 1 and 5),
	CONSTRAINT "order_ratings_comment_check" CHECK ("order_ratings"."comment" is null or char_length("order_ratings"."comment") between 1 and 1000)
);
--> statement-breakpoint
CREATE TABLE "reports" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"reporter_id" uuid NOT NULL,
	"design_id" uuid NOT NULL,
	"comment_id" uuid,
	"reason" text NOT NULL,
	"text" text,
	"status" text DEFAULT 'open' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "reports_reason_check" CHECK ("reports"."reason" in ('spam', 'offensive', 'copyright', 'other')),
	CONSTRAINT "reports_status_check" CHECK ("reports"."status" in ('open', 'upheld', 'dismissed')),
	CONSTRAINT "reports_text_check" CHECK ("reports"."text" is null or char_length("reports"."text") between 1 and 1000)
);
--> statement-breakpoint
DROP INDEX "designs_gallery_published_idx";--> statement-breakpoint
DROP INDEX "designs_gallery_reuse_idx";--> statement-breakpoint
DROP INDEX "designs_gallery_comment_idx";--> statement-breakpoint
DROP INDEX "designs_search_vector_idx";--> statement-breakpoint
ALTER TABLE "comments" ADD COLUMN "deleted_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "comments" ADD COLUMN "hidden_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "designs" ADD COLUMN "hidden_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "designs" ADD COLUMN "favourite_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "designs" ADD COLUMN "shape" text;--> statement-breakpoint
ALTER TABLE "designs" ADD COLUMN "length" text;--> statement-breakpoint
ALTER TABLE "designs" ADD COLUMN "tags" text[] DEFAULT '{}'::text[] NOT NULL;--> statement-breakpoint
ALTER TABLE "orders" ADD COLUMN "ship_by" date;--> statement-breakpoint
ALTER TABLE "design_favourites" ADD CONSTRAINT "design_favourites_design_id_designs_id_fk" FOREIGN KEY ("design_id") REFERENCES "public"."designs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "design_favourites" ADD CONSTRAINT "design_favourites_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "moderation_actions" ADD CONSTRAINT "moderation_actions_moderator_id_users_id_fk" FOREIGN KEY ("moderator_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "moderation_actions" ADD CONSTRAINT "moderation_actions_design_id_designs_id_fk" FOREIGN KEY ("design_id") REFERENCES "public"."designs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "moderation_actions" ADD CONSTRAINT "moderation_actions_comment_id_comments_id_fk" FOREIGN KEY ("comment_id") REFERENCES "public"."comments"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "order_ratings" ADD CONSTRAINT "order_ratings_order_id_orders_id_fk" FOREIGN KEY ("order_id") REFERENCES "public"."orders"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "order_ratings" ADD CONSTRAINT "order_ratings_customer_id_users_id_fk" FOREIGN KEY ("customer_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "order_ratings" ADD CONSTRAINT "order_ratings_technician_id_users_id_fk" FOREIGN KEY ("technician_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "reports" ADD CONSTRAINT "reports_reporter_id_users_id_fk" FOREIGN KEY ("reporter_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "reports" ADD CONSTRAINT "reports_design_id_designs_id_fk" FOREIGN KEY ("design_id") REFERENCES "public"."designs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "reports" ADD CONSTRAINT "reports_comment_id_comments_id_fk" FOREIGN KEY ("comment_id") REFERENCES "public"."comments"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "design_favourites_user_id_created_at_idx" ON "design_favourites" USING btree ("user_id","created_at" DESC NULLS FIRST,"design_id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "moderation_actions_design_id_created_at_idx" ON "moderation_actions" USING btree ("design_id","created_at");--> statement-breakpoint
CREATE INDEX "moderation_actions_comment_id_idx" ON "moderation_actions" USING btree ("comment_id");--> statement-breakpoint
CREATE INDEX "moderation_actions_moderator_id_idx" ON "moderation_actions" USING btree ("moderator_id");--> statement-breakpoint
CREATE INDEX "order_ratings_technician_id_idx" ON "order_ratings" USING btree ("technician_id","stars");--> statement-breakpoint
CREATE INDEX "order_ratings_customer_id_idx" ON "order_ratings" USING btree ("customer_id");--> statement-breakpoint
CREATE UNIQUE INDEX "reports_design_reporter_key" ON "reports" USING btree ("design_id","reporter_id") WHERE "reports"."comment_id" is null;--> statement-breakpoint
CREATE UNIQUE INDEX "reports_comment_reporter_key" ON "reports" USING btree ("comment_id","reporter_id") WHERE "reports"."comment_id" is not null;--> statement-breakpoint
CREATE INDEX "reports_open_created_at_idx" ON "reports" USING btree ("created_at","id") WHERE "reports"."status" = 'open';--> statement-breakpoint
CREATE INDEX "reports_reporter_id_idx" ON "reports" USING btree ("reporter_id");--> statement-breakpoint
CREATE INDEX "designs_gallery_favourite_idx" ON "designs" USING btree ("favourite_count" DESC NULLS FIRST,"published_at" DESC NULLS FIRST,"id" DESC NULLS FIRST) WHERE "designs"."is_public" and "designs"."removed_at" is null and "designs"."hidden_at" is null;--> statement-breakpoint
CREATE INDEX "designs_gallery_shape_idx" ON "designs" USING btree ("shape","published_at" DESC NULLS FIRST,"id" DESC NULLS FIRST) WHERE "designs"."is_public" and "designs"."removed_at" is null and "designs"."hidden_at" is null;--> statement-breakpoint
CREATE INDEX "designs_gallery_length_idx" ON "designs" USING btree ("length","published_at" DESC NULLS FIRST,"id" DESC NULLS FIRST) WHERE "designs"."is_public" and "designs"."removed_at" is null and "designs"."hidden_at" is null;--> statement-breakpoint
CREATE INDEX "designs_tags_idx" ON "designs" USING gin ("tags") WHERE "designs"."is_public" and "designs"."removed_at" is null and "designs"."hidden_at" is null;--> statement-breakpoint
CREATE INDEX "orders_technician_id_ship_by_idx" ON "orders" USING btree ("technician_id","ship_by","id");--> statement-breakpoint
CREATE INDEX "orders_customer_id_ship_by_idx" ON "orders" USING btree ("customer_id","ship_by","id");--> statement-breakpoint
CREATE INDEX "designs_gallery_published_idx" ON "designs" USING btree ("published_at" DESC NULLS FIRST,"id" DESC NULLS FIRST) WHERE "designs"."is_public" and "designs"."removed_at" is null and "designs"."hidden_at" is null;--> statement-breakpoint
CREATE INDEX "designs_gallery_reuse_idx" ON "designs" USING btree ("reuse_count" DESC NULLS FIRST,"published_at" DESC NULLS FIRST,"id" DESC NULLS FIRST) WHERE "designs"."is_public" and "designs"."removed_at" is null and "designs"."hidden_at" is null;--> statement-breakpoint
CREATE INDEX "designs_gallery_comment_idx" ON "designs" USING btree ("comment_count" DESC NULLS FIRST,"published_at" DESC NULLS FIRST,"id" DESC NULLS FIRST) WHERE "designs"."is_public" and "designs"."removed_at" is null and "designs"."hidden_at" is null;--> statement-breakpoint
CREATE INDEX "designs_search_vector_idx" ON "designs" USING gin ("search_vector") WHERE "designs"."is_public" and "designs"."removed_at" is null and "designs"."hidden_at" is null;--> statement-breakpoint
ALTER TABLE "designs" ADD CONSTRAINT "designs_favourite_count_check" CHECK ("designs"."favourite_count" >= 0);--> statement-breakpoint
ALTER TABLE "designs" ADD CONSTRAINT "designs_shape_check" CHECK ("designs"."shape" is null or "designs"."shape" in ('square', 'squoval', 'round', 'oval', 'almond', 'coffin', 'stiletto'));--> statement-breakpoint
ALTER TABLE "designs" ADD CONSTRAINT "designs_length_check" CHECK ("designs"."length" is null or "designs"."length" in ('short', 'medium', 'long', 'extra_long'));--> statement-breakpoint
ALTER TABLE "designs" ADD CONSTRAINT "designs_tags_check" CHECK (cardinality("designs"."tags") <= 5);