// snip: SNIP/SNIPER multi-scale training primitives.
// core/version.hpp: the one place the version is written (CMakeLists.txt reads it from here).
#pragma once

#define SNIP_VERSION_MAJOR 0
#define SNIP_VERSION_MINOR 2
#define SNIP_VERSION_PATCH 0

/// "MAJOR.MINOR.PATCH" as a string literal.
#define SNIP_VERSION_STRING_(a, b, c) #a "." #b "." #c
#define SNIP_VERSION_STRING_X_(a, b, c) SNIP_VERSION_STRING_(a, b, c)
#define SNIP_VERSION_STRING SNIP_VERSION_STRING_X_(SNIP_VERSION_MAJOR, SNIP_VERSION_MINOR, SNIP_VERSION_PATCH)
