import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { repoRoot } from "./paths";

/** The shared STAC corpus lives beside the repository, never inside it. */
export const corpusRoot = process.env.STAC_CORPUS ? resolve(process.env.STAC_CORPUS) : resolve(repoRoot, "..", "shared", "stac-corpus");

export function corpusAvailable(): boolean {
  return existsSync(join(corpusRoot, "valid"));
}

/** Skips the calling mocha suite with a clear reason when ../shared/stac-corpus is absent. */
export function requireCorpus(ctx: Mocha.Context): void {
  if (!corpusAvailable()) {
    console.warn(`    ! STAC corpus not found at ${corpusRoot}: set STAC_CORPUS or place shared/ beside the repo; skipping`);
    ctx.skip();
  }
}

export interface CorpusDocument {
  file: string;
  json: unknown;
  text: string;
}

export function corpusDocuments(kind: "valid" | "invalid"): CorpusDocument[] {
  const dir = join(corpusRoot, kind);
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((file) => {
      const text = readFileSync(join(dir, file), "utf8");
      return { file, text, json: JSON.parse(text) };
    });
}

/** One entry of the corpus's index.json: what the corpus's own validation found for a file. */
export interface CorpusIndexEntry {
  file: string;
  expected: string;
  core: string[];
  extension_invalid: string[];
}

export function corpusIndex(): CorpusIndexEntry[] {
  return JSON.parse(readFileSync(join(corpusRoot, "index.json"), "utf8")) as CorpusIndexEntry[];
}

/** The `type` values of the objects publish accepts: Item, Collection, Catalog. */
export const STAC_TYPES: ReadonlySet<string> = new Set(["Feature", "Collection", "Catalog"]);

/** The Items of a corpus document: the document itself when it is an Item, the features of a FeatureCollection, otherwise none. */
export function itemsOf(json: unknown): Array<Record<string, unknown>> {
  const doc = json as Record<string, unknown>;
  if (doc.type === "Feature") return [doc];
  if (doc.type === "FeatureCollection" && Array.isArray(doc.features)) return doc.features as Array<Record<string, unknown>>;
  return [];
}
