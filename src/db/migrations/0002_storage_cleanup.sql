CREATE TABLE "storage_cleanup" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"key" text NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "storage_cleanup_key_key" ON "storage_cleanup" USING btree ("key");--> statement-breakpoint
CREATE INDEX "storage_cleanup_created_at_idx" ON "storage_cleanup" USING btree ("created_at");