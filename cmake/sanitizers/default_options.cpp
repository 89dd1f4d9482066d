// Run-time defaults of the sanitizers for every program snip builds with SNIP_SANITIZE
// (added to each of them by the snip_sanitize target in the root CMakeLists.txt).
// The sanitizer runtimes call these hooks at start-up; the environment variables
// (ASAN_OPTIONS, UBSAN_OPTIONS, LSAN_OPTIONS, TSAN_OPTIONS) override any option here.
// The suppression files next to this one are narrow and say why each entry exists.

#ifndef SNIP_SANITIZER_DIR
#error "SNIP_SANITIZER_DIR must name cmake/sanitizers (set by the snip_sanitize target)"
#endif

#if defined(__GNUC__)
#define SNIP_SANITIZER_HOOK extern "C" __attribute__((visibility("default"), used))
#else
#define SNIP_SANITIZER_HOOK extern "C"
#endif

SNIP_SANITIZER_HOOK const char* __asan_default_options() {
  // strict_string_checks / check_initialization_order: catch more than the defaults;
  // detect_stack_use_after_return: use of a dead frame's locals (e.g. a lambda's reference
  // capture outliving its scope in the thread pools).
  return "strict_string_checks=1:check_initialization_order=1:strict_init_order=1:"
         "detect_stack_use_after_return=1:abort_on_error=0:halt_on_error=1";
}

SNIP_SANITIZER_HOOK const char* __ubsan_default_options() {
  return "print_stacktrace=1:halt_on_error=1:suppressions=" SNIP_SANITIZER_DIR "/ubsan.supp";
}

SNIP_SANITIZER_HOOK const char* __lsan_default_options() {
  return "suppressions=" SNIP_SANITIZER_DIR "/lsan.supp:print_suppressions=0";
}

SNIP_SANITIZER_HOOK const char* __tsan_default_options() {
  return "halt_on_error=1:second_deadlock_stack=1:history_size=4:"
         "suppressions=" SNIP_SANITIZER_DIR "/tsan.supp";
}

