import { xenconsProject } from '../../tools/vitest/project.js';

export default xenconsProject('@xencons/device');
