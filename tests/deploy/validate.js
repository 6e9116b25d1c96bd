// tests/deploy/validate.js - validates Kubernetes objects against the Kubernetes OpenAPI schema
// with kubernetes-models (its generated JSON schemas, checked by ajv). Reads a JSON array of
// objects on stdin; prints one line per object ("ok KIND/NAME" or "INVALID KIND/NAME: why");
// exit status 1 if any object is invalid or of a kind the models do not know.
// Run by test_kubernetes.py, from the node_modules it installs (package.json, package-lock.json).
"use strict";
const objects = JSON.parse(require("fs").readFileSync(0, "utf8"));
let bad = 0;
for (const o of objects) {
  const name = `${o.kind}/${o.metadata && o.metadata.name}`;
  // "v1" -> kubernetes-models/v1, "apps/v1" -> kubernetes-models/apps/v1.
  const module = `kubernetes-models/${o.apiVersion}`;
  let Kind;
  try {
    Kind = require(module)[o.kind];
  } catch (e) {
    Kind = undefined;
  }
  if (!Kind) {
    console.log(`INVALID ${name}: no schema for ${o.apiVersion} ${o.kind}`);
    bad++;
    continue;
  }
  try {
    new Kind(o).validate();
    console.log(`ok ${name}`);
  } catch (e) {
    console.log(`INVALID ${name}: ${e.message}`);
    bad++;
  }
}
process.exit(bad ? 1 : 0);
