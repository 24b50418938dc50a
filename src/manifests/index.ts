/** Public entry point of the manifests layer. */
export { brokenFiles, loadManifests, objectKey, refOf } from './load.js';
export type {
  LoadOptions,
  LoadResult,
  ManifestObject,
  ReferencesMode,
  SourceFile,
} from './load.js';
export { collectFiles } from './files.js';
export type { CollectResult } from './files.js';
export {
  formatDiagnostic,
  formatGithubAnnotation,
  formatPath,
  compareDiagnostics,
} from './diagnostic.js';
export type { Diagnostic, ObjectRef, Severity } from './diagnostic.js';
export { DIAGNOSTIC_CODES } from './codes.js';
export type { DiagnosticCode } from './codes.js';
