// Web assets built into the binary at configure time, shared by report.html and the studio.
#pragma once

//! three.js (web/node_modules/three/build/three.module.min.js, MIT licence, from the npm registry):
//! an ES module, inlined into report.html and served by `tracecast studio`.
extern const char* const kThreeModuleJs;
