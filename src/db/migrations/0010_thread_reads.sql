CREATE TABLE "thread_reads" (
	"order_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"read_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "thread_reads_pkey" PRIMARY KEY("order_id","user_id")
);
--> statement-breakpoint
ALTER TABLE "thread_reads" ADD CONSTRAINT "thread_reads_order_id_orders_id_fk" FOREIGN KEY ("order_id") REFERENCES "public"."orders"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "thread_reads" ADD CONSTRAINT "thread_reads_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "thread_reads_user_id_idx" ON "thread_reads" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "messages_order_id_created_at_sender_id_idx" ON "messages" USING btree ("order_id","created_at","sender_id");--> statement-breakpoint
CREATE INDEX "order_events_order_id_created_at_actor_id_idx" ON "order_events" USING btree ("order_id","created_at","actor_id");--> statement-breakpoint
DROP INDEX "messages_order_id_created_at_idx";--> statement-breakpoint
DROP INDEX "order_events_order_id_created_at_idx";
