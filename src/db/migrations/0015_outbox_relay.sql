-- Rows already there got their fan-out job when they were written: they count as relayed (a fast default, no rewrite).
ALTER TABLE "outbox_events" ADD COLUMN "relayed_at" timestamp with time zone DEFAULT now();--> statement-breakpoint
ALTER TABLE "outbox_events" ALTER COLUMN "relayed_at" DROP DEFAULT;--> statement-breakpoint
CREATE INDEX "outbox_events_unrelayed_idx" ON "outbox_events" USING btree ("occurred_at") WHERE "outbox_events"."relayed_at" is null;
