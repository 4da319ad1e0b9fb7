export { bundleChildScript } from './child-script.js';
export { type Requirement, requirement } from './requirement.js';
export { commandExists, isRoot } from './system.js';
export { makeTempDir, withTempDir } from './temp-dir.js';
export { waitUntil } from './wait-until.js';
