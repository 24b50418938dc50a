/** The endpoint registry lives in api/ (platform, mesh and metrics share it); re-exported here. */
export type { EndpointRegistry, ProxyInstance } from '../api/endpoint-registry.js';
