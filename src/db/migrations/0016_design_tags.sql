CREATE TABLE "design_tags" (
	"tag" text NOT NULL,
	"design_id" uuid NOT NULL,
	CONSTRAINT "design_tags_tag_design_id_pk" PRIMARY KEY("tag","design_id")
);
--> statement-breakpoint
ALTER TABLE "design_tags" ADD CONSTRAINT "design_tags_design_id_designs_id_fk" FOREIGN KEY ("design_id") REFERENCES "public"."designs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "design_tags_design_id_idx" ON "design_tags" USING btree ("design_id");--> statement-breakpoint
-- Hand-written below: design_tags mirrors the tags of gallery designs (schema.ts `galleryRow`: public, not
-- removed, not hidden). One trigger keeps it, whichever module moves a design in or out of the gallery or
-- retags it; counter updates (reuses, comments, favourites, orders) name none of its columns and skip it.
CREATE FUNCTION "design_tags_sync"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND (OLD."is_public", OLD."removed_at", OLD."hidden_at", OLD."tags")
      IS NOT DISTINCT FROM (NEW."is_public", NEW."removed_at", NEW."hidden_at", NEW."tags") THEN
    RETURN NULL;
  END IF;
  IF TG_OP <> 'INSERT' AND OLD."is_public" AND OLD."removed_at" IS NULL AND OLD."hidden_at" IS NULL THEN
    DELETE FROM "design_tags" WHERE "design_id" = OLD."id";
  END IF;
  IF TG_OP <> 'DELETE' AND NEW."is_public" AND NEW."removed_at" IS NULL AND NEW."hidden_at" IS NULL THEN
    INSERT INTO "design_tags" ("tag", "design_id")
      SELECT DISTINCT t, NEW."id" FROM unnest(NEW."tags") AS t;
  END IF;
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER "designs_design_tags_sync"
  AFTER INSERT OR DELETE OR UPDATE OF "is_public", "removed_at", "hidden_at", "tags" ON "designs"
  FOR EACH ROW EXECUTE FUNCTION "design_tags_sync"();--> statement-breakpoint
INSERT INTO "design_tags" ("tag", "design_id")
  SELECT DISTINCT t, d."id" FROM "designs" AS d, unnest(d."tags") AS t
  WHERE d."is_public" AND d."removed_at" IS NULL AND d."hidden_at" IS NULL;
