export { ApiAuth, type ApiAuthMode } from "./auth";
export { checkSupported, readCapabilities, type ApiCapabilities } from "./capabilities";
export { StacApiClient, type RunOptions, type SearchPlan, type SearchSpec, type StacApiOptions } from "./client";
export { isSearchCursor, SearchPosition, type SearchCursor } from "./cursor";
export { searchBody, searchQuery } from "./encode";
export type { StacRequest } from "./http";
export { nextRequest } from "./next-link";
export { readSearchPages, type SearchPage } from "./pages";
export { normalizeSearch, parseMaxItems, parseMethod, type FieldsSpec, type FilterLang, type SearchInput, type SearchMethod, type SearchParams, type SortField } from "./params";
