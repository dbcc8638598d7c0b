CREATE TABLE "comments" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"design_id" uuid NOT NULL,
	"author_id" uuid NOT NULL,
	"text" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "comments_text_check" CHECK (char_length("comments"."text") between 1 and 1000)
);
--> statement-breakpoint
CREATE TABLE "design_usages" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"design_id" uuid NOT NULL,
	"order_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "designs" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"order_id" uuid NOT NULL,
	"owner_id" uuid NOT NULL,
	"description" text NOT NULL,
	"is_public" boolean DEFAULT false NOT NULL,
	"published_at" timestamp with time zone,
	"removed_at" timestamp with time zone,
	"reuse_count" integer DEFAULT 0 NOT NULL,
	"comment_count" integer DEFAULT 0 NOT NULL,
	"search_vector" "tsvector" GENERATED ALWAYS AS (to_tsvector('english', description)) STORED,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "designs_counts_check" CHECK ("designs"."reuse_count" >= 0 and "designs"."comment_count" >= 0)
);
--> statement-breakpoint
CREATE TABLE "idempotency_keys" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL,
	"key" text NOT NULL,
	"scope" text NOT NULL,
	"request_hash" text NOT NULL,
	"state" text DEFAULT 'in_progress' NOT NULL,
	"response_status" integer,
	"response_body" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "invitations" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"email" text NOT NULL,
	"name" text NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"auth0_user_id" text,
	"ticket_url" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"invited_by_id" uuid,
	"accepted_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "invitations_status_check" CHECK ("invitations"."status" in ('pending', 'accepted'))
);
--> statement-breakpoint
CREATE TABLE "messages" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"order_id" uuid NOT NULL,
	"sender_id" uuid NOT NULL,
	"text" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "messages_text_check" CHECK (char_length("messages"."text") between 1 and 2000)
);
--> statement-breakpoint
CREATE TABLE "order_events" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"order_id" uuid NOT NULL,
	"actor_id" uuid,
	"from_status" text,
	"to_status" text NOT NULL,
	"note" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "order_events_to_status_check" CHECK ("order_events"."to_status" in ('submitted', 'under_review', 'accepted', 'rejected', 'in_production', 'shipped', 'delivered'))
);
--> statement-breakpoint
CREATE TABLE "order_revisions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"order_id" uuid NOT NULL,
	"revision" integer NOT NULL,
	"description" text NOT NULL,
	"image_key" text NOT NULL,
	"thumbnail_key" text NOT NULL,
	"feedback" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "orders" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"customer_id" uuid NOT NULL,
	"technician_id" uuid,
	"description" text NOT NULL,
	"quantity" integer NOT NULL,
	"shape" text,
	"length" text,
	"nail_sizes" integer[],
	"status" text NOT NULL,
	"image_key" text NOT NULL,
	"thumbnail_key" text NOT NULL,
	"complexity_multiplier" numeric(3, 2),
	"unit_price_cents" integer,
	"total_price_cents" integer,
	"currency" text NOT NULL,
	"payment_status" text DEFAULT 'unpaid' NOT NULL,
	"feedback" text,
	"revision_count" integer DEFAULT 0 NOT NULL,
	"carrier" text,
	"tracking_number" text,
	"original_order_id" uuid,
	"source_design_id" uuid,
	"status_changed_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "orders_quantity_check" CHECK ("orders"."quantity" > 0 and "orders"."quantity" <= 100),
	CONSTRAINT "orders_status_check" CHECK ("orders"."status" in ('submitted', 'under_review', 'accepted', 'rejected', 'in_production', 'shipped', 'delivered')),
	CONSTRAINT "orders_payment_status_check" CHECK ("orders"."payment_status" in ('unpaid', 'paid')),
	CONSTRAINT "orders_multiplier_check" CHECK ("orders"."complexity_multiplier" is null or ("orders"."complexity_multiplier" >= 1.00 and "orders"."complexity_multiplier" <= 5.00)),
	CONSTRAINT "orders_prices_check" CHECK (coalesce("orders"."unit_price_cents", 0) >= 0 and coalesce("orders"."total_price_cents", 0) >= 0),
	CONSTRAINT "orders_revision_count_check" CHECK ("orders"."revision_count" >= 0),
	CONSTRAINT "orders_shape_check" CHECK ("orders"."shape" is null or "orders"."shape" in ('square', 'squoval', 'round', 'oval', 'almond', 'coffin', 'stiletto')),
	CONSTRAINT "orders_length_check" CHECK ("orders"."length" is null or "orders"."length" in ('short', 'medium', 'long', 'extra_long')),
	CONSTRAINT "orders_nail_sizes_check" CHECK ("orders"."nail_sizes" is null or (cardinality("orders"."nail_sizes") = 10 and 0 <= all("orders"."nail_sizes") and 11 >= all("orders"."nail_sizes"))),
	CONSTRAINT "orders_unassigned_only_when_submitted_check" CHECK (("orders"."status" = 'submitted') = ("orders"."technician_id" is null))
);
--> statement-breakpoint
CREATE TABLE "users" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"auth0_id" text NOT NULL,
	"email" text NOT NULL,
	"name" text NOT NULL,
	"role" text NOT NULL,
	"phone" text,
	"shipping_address" jsonb,
	"nail_sizes" integer[],
	"preferred_shape" text,
	"preferred_length" text,
	"last_login_at" timestamp with time zone,
	"last_assigned_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "users_role_check" CHECK ("users"."role" in ('customer', 'nail_technician')),
	CONSTRAINT "users_email_lower_check" CHECK ("users"."email" = lower("users"."email")),
	CONSTRAINT "users_nail_sizes_check" CHECK ("users"."nail_sizes" is null or (cardinality("users"."nail_sizes") = 10 and 0 <= all("users"."nail_sizes") and 11 >= all("users"."nail_sizes"))),
	CONSTRAINT "users_preferred_shape_check" CHECK ("users"."preferred_shape" is null or "users"."preferred_shape" in ('square', 'squoval', 'round', 'oval', 'almond', 'coffin', 'stiletto')),
	CONSTRAINT "users_preferred_length_check" CHECK ("users"."preferred_length" is null or "users"."preferred_length" in ('short', 'medium', 'long', 'extra_long'))
);
--> statement-breakpoint
ALTER TABLE "comments" ADD CONSTRAINT "comments_design_id_designs_id_fk" FOREIGN KEY ("design_id") REFERENCES "public"."designs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "comments" ADD CONSTRAINT "comments_author_id_users_id_fk" FOREIGN KEY ("author_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "design_usages" ADD CONSTRAINT "design_usages_design_id_designs_id_fk" FOREIGN KEY ("design_id") REFERENCES "public"."designs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "design_usages" ADD CONSTRAINT "design_usages_order_id_orders_id_fk" FOREIGN KEY ("order_id") REFERENCES "public"."orders"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "design_usages" ADD CONSTRAINT "design_usages_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "designs" ADD CONSTRAINT "designs_order_id_orders_id_fk" FOREIGN KEY ("order_id") REFERENCES "public"."orders"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "designs" ADD CONSTRAINT "designs_owner_id_users_id_fk" FOREIGN KEY ("owner_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "idempotency_keys" ADD CONSTRAINT "idempotency_keys_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "invitations" ADD CONSTRAINT "invitations_invited_by_id_users_id_fk" FOREIGN KEY ("invited_by_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_order_id_orders_id_fk" FOREIGN KEY ("order_id") REFERENCES "public"."orders"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_sender_id_users_id_fk" FOREIGN KEY ("sender_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "order_events" ADD CONSTRAINT "order_events_order_id_orders_id_fk" FOREIGN KEY ("order_id") REFERENCES "public"."orders"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "order_events" ADD CONSTRAINT "order_events_actor_id_users_id_fk" FOREIGN KEY ("actor_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "order_revisions" ADD CONSTRAINT "order_revisions_order_id_orders_id_fk" FOREIGN KEY ("order_id") REFERENCES "public"."orders"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "orders" ADD CONSTRAINT "orders_customer_id_users_id_fk" FOREIGN KEY ("customer_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "orders" ADD CONSTRAINT "orders_technician_id_users_id_fk" FOREIGN KEY ("technician_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "orders" ADD CONSTRAINT "orders_original_order_id_orders_id_fk" FOREIGN KEY ("original_order_id") REFERENCES "public"."orders"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "orders" ADD CONSTRAINT "orders_source_design_id_designs_id_fk" FOREIGN KEY ("source_design_id") REFERENCES "public"."designs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "comments_design_id_created_at_idx" ON "comments" USING btree ("design_id","created_at");--> statement-breakpoint
CREATE INDEX "comments_author_id_idx" ON "comments" USING btree ("author_id");--> statement-breakpoint
CREATE INDEX "design_usages_design_id_created_at_idx" ON "design_usages" USING btree ("design_id","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE UNIQUE INDEX "design_usages_order_id_key" ON "design_usages" USING btree ("order_id");--> statement-breakpoint
CREATE INDEX "design_usages_user_id_idx" ON "design_usages" USING btree ("user_id");--> statement-breakpoint
CREATE UNIQUE INDEX "designs_order_id_key" ON "designs" USING btree ("order_id");--> statement-breakpoint
CREATE INDEX "designs_owner_id_idx" ON "designs" USING btree ("owner_id");--> statement-breakpoint
CREATE INDEX "designs_gallery_published_idx" ON "designs" USING btree ("published_at" DESC NULLS LAST,"id" DESC NULLS LAST) WHERE "designs"."is_public" and "designs"."removed_at" is null;--> statement-breakpoint
CREATE INDEX "designs_gallery_reuse_idx" ON "designs" USING btree ("reuse_count" DESC NULLS LAST,"published_at" DESC NULLS LAST,"id" DESC NULLS LAST) WHERE "designs"."is_public" and "designs"."removed_at" is null;--> statement-breakpoint
CREATE INDEX "designs_gallery_comment_idx" ON "designs" USING btree ("comment_count" DESC NULLS LAST,"published_at" DESC NULLS LAST,"id" DESC NULLS LAST) WHERE "designs"."is_public" and "designs"."removed_at" is null;--> statement-breakpoint
CREATE INDEX "designs_search_vector_idx" ON "designs" USING gin ("search_vector");--> statement-breakpoint
CREATE UNIQUE INDEX "idempotency_keys_user_id_key_key" ON "idempotency_keys" USING btree ("user_id","key");--> statement-breakpoint
CREATE INDEX "idempotency_keys_created_at_idx" ON "idempotency_keys" USING btree ("created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "invitations_pending_email_key" ON "invitations" USING btree ("email") WHERE "invitations"."status" = 'pending';--> statement-breakpoint
CREATE INDEX "invitations_email_idx" ON "invitations" USING btree ("email");--> statement-breakpoint
CREATE INDEX "invitations_invited_by_id_idx" ON "invitations" USING btree ("invited_by_id");--> statement-breakpoint
CREATE INDEX "messages_order_id_created_at_idx" ON "messages" USING btree ("order_id","created_at");--> statement-breakpoint
CREATE INDEX "messages_sender_id_idx" ON "messages" USING btree ("sender_id");--> statement-breakpoint
CREATE INDEX "order_events_order_id_created_at_idx" ON "order_events" USING btree ("order_id","created_at");--> statement-breakpoint
CREATE INDEX "order_events_actor_id_idx" ON "order_events" USING btree ("actor_id");--> statement-breakpoint
CREATE UNIQUE INDEX "order_revisions_order_id_revision_key" ON "order_revisions" USING btree ("order_id","revision");--> statement-breakpoint
CREATE INDEX "orders_customer_id_created_at_idx" ON "orders" USING btree ("customer_id","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "orders_technician_id_created_at_idx" ON "orders" USING btree ("technician_id","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "orders_unassigned_created_at_idx" ON "orders" USING btree ("created_at" DESC NULLS LAST) WHERE "orders"."technician_id" is null;--> statement-breakpoint
CREATE INDEX "orders_status_idx" ON "orders" USING btree ("status");--> statement-breakpoint
CREATE INDEX "orders_original_order_id_idx" ON "orders" USING btree ("original_order_id");--> statement-breakpoint
CREATE INDEX "orders_source_design_id_idx" ON "orders" USING btree ("source_design_id");--> statement-breakpoint
CREATE UNIQUE INDEX "users_auth0_id_key" ON "users" USING btree ("auth0_id");--> statement-breakpoint
CREATE UNIQUE INDEX "users_email_key" ON "users" USING btree ("email");--> statement-breakpoint
CREATE INDEX "users_role_idx" ON "users" USING btree ("role");