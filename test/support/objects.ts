/** Manifests the controller-level tests share. */

/**
 * The `web` Deployment in namespace `shop` (a process command; the in-memory platform never
 * runs it), whose VERSION env marks a release.
 */
export function webDeployment(version: string): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: main
          command: ["node", "server.js"]
          env: [{name: VERSION, value: "${version}"}]
`;
}
