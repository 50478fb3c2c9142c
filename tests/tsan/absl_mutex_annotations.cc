// ThreadSanitizer builds only (PL_TSAN, `make tsan`): tells TSan what an
// absl::Mutex does.
//
// Debian's libabsl_synchronization is not built with TSan, so absl's own
// annotations are compiled out of it and TSan never sees its lock
// operations: every access guarded by an absl::Mutex (the ledger's
// checkpoint state, the MemTable) would be reported as a race. Linked into
// the TSan executables, this file interposes the absl::Mutex members we call.
// Each forwards to the library's own (found with dlsym(RTLD_NEXT)) and adds
// the happens-before edge with __tsan_acquire / __tsan_release on the
// mutex's address: acquire after a lock returns, release before an unlock.
// Await releases before it waits and acquires when it returns, since other
// threads hold the mutex meanwhile. A Condition is evaluated by the library
// with the mutex held, in the waiter's thread or in whichever thread is
// unlocking: it is wrapped so that each evaluation acquires before it reads
// and releases after.
// Reader and writer locks are treated alike, which can only hide a race
// between two readers that write under a shared lock.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace {

#define PL_STRINGIFY_INNER(x) #x
#define PL_STRINGIFY(x) PL_STRINGIFY_INNER(x)

// The library's definition of absl::<inline namespace>::Mutex::<suffix>,
// e.g. suffix "4LockEv" for Lock().
template <typename Fn>
Fn Next(const char* suffix) {
  const char* ns = PL_STRINGIFY(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  const std::string name =
      "_ZN4absl" + std::to_string(std::strlen(ns)) + ns + "5Mutex" + suffix;
  void* fn = ::dlsym(RTLD_NEXT, name.c_str());
  if (fn == nullptr) {
    std::fprintf(stderr, "absl_mutex_annotations: no %s in the absl library\n", name.c_str());
    std::abort();
  }
  return reinterpret_cast<Fn>(fn);
}

using Plain = void (*)(absl::Mutex*);
using Try = bool (*)(absl::Mutex*);
using Cond = void (*)(absl::Mutex*, const absl::Condition&);
using CondTimeout = bool (*)(absl::Mutex*, const absl::Condition&, absl::Duration);

// A Condition evaluated between an acquire and a release of its mutex.
// Built before the waiter's release, so other threads read it after.
struct Guarded {
  Guarded(absl::Mutex* mu, const absl::Condition& user)
      : mu(mu), user(&user), cond(&Guarded::Eval, this) {}
  static bool Eval(void* arg) {
    const Guarded* g = static_cast<const Guarded*>(arg);
    __tsan_acquire(g->mu);
    const bool met = g->user->Eval();
    __tsan_release(g->mu);
    return met;
  }
  absl::Mutex* const mu;
  const absl::Condition* const user;
  const absl::Condition cond;
};

}  // namespace

void absl::Mutex::Lock() {
  static const Plain next = Next<Plain>("4LockEv");
  next(this);
  __tsan_acquire(this);
}

void absl::Mutex::ReaderLock() {
  static const Plain next = Next<Plain>("10ReaderLockEv");
  next(this);
  __tsan_acquire(this);
}

bool absl::Mutex::TryLock() {
  static const Try next = Next<Try>("7TryLockEv");
  const bool locked = next(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

bool absl::Mutex::ReaderTryLock() {
  static const Try next = Next<Try>("13ReaderTryLockEv");
  const bool locked = next(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

void absl::Mutex::LockWhen(const absl::Condition& cond) {
  static const Cond next = Next<Cond>("8LockWhenERKNS0_9ConditionE");
  const Guarded guarded(this, cond);
  next(this, guarded.cond);
  __tsan_acquire(this);
}

void absl::Mutex::ReaderLockWhen(const absl::Condition& cond) {
  static const Cond next = Next<Cond>("14ReaderLockWhenERKNS0_9ConditionE");
  const Guarded guarded(this, cond);
  next(this, guarded.cond);
  __tsan_acquire(this);
}

void absl::Mutex::Unlock() {
  static const Plain next = Next<Plain>("6UnlockEv");
  __tsan_release(this);
  next(this);
}

void absl::Mutex::ReaderUnlock() {
  static const Plain next = Next<Plain>("12ReaderUnlockEv");
  __tsan_release(this);
  next(this);
}

void absl::Mutex::Await(const absl::Condition& cond) {
  static const Cond next = Next<Cond>("5AwaitERKNS0_9ConditionE");
  const Guarded guarded(this, cond);
  __tsan_release(this);
  next(this, guarded.cond);
  __tsan_acquire(this);
}

bool absl::Mutex::AwaitWithTimeout(const absl::Condition& cond, absl::Duration timeout) {
  static const CondTimeout next =
      Next<CondTimeout>("16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const Guarded guarded(this, cond);
  __tsan_release(this);
  const bool met = next(this, guarded.cond, timeout);
  __tsan_acquire(this);
  return met;
}
