// Lint: typescript-eslint's recommended rules (syntax-based, no type information: fast enough for
// every `npm test`). Generated bundles and build output are not linted.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["build/", "nodes/", "bin/", "node_modules/", "test-artifacts/", ".node-red-dev/", "**/*.d.ts"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2022, sourceType: "module" },
    rules: {
      // `export = function register(RED)` is how a Node-RED module is written.
      "@typescript-eslint/no-require-imports": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
      // Node-RED constructors are written `const node = this`.
      "@typescript-eslint/no-this-alias": "off",
      // Paths and names are checked for control characters on purpose.
      "no-control-regex": "off",
    },
  },
  {
    // Tests and tools handle Node-RED's untyped helper nodes and JSON documents.
    files: ["test/**", "bench/**", "scripts/**"],
    rules: { "@typescript-eslint/no-explicit-any": "off" },
  },
  {
    files: ["scripts/**/*.mjs", "**/*.js", "**/*.mjs", "**/*.cjs"],
    languageOptions: { globals: { process: "readonly", console: "readonly", setTimeout: "readonly", setImmediate: "readonly" } },
  },
  {
    files: ["**/*.cjs"],
    languageOptions: { sourceType: "commonjs", globals: { module: "writable", require: "readonly" } },
  },
);
