import { resolve } from "node:path";

/** Tests run from build/test/…; the repository root is three folders up from build/test/helpers. */
export const repoRoot = resolve(__dirname, "..", "..", "..");
