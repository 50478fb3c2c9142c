// Internal to the project: a thread for background work (the checkpointer,
// the write-ahead log's segment preparer, the server's committer) that
// never takes a process's signals.
//
// Why: SIGTERM and SIGINT go to whichever thread does not block them, and
// the server handles them on its I/O threads (an Asio signal_set). Under
// ThreadSanitizer a signal delivered to a thread waiting in a raw futex
// syscall (absl::Mutex in Debian's uninstrumented abseil) is queued for
// that thread's next intercepted call, which an idle checkpointer may never
// make: a SIGTERM was lost and `pointledgerd` never stopped (CI, session
// 28). Background threads have no use for signals in any build.
#ifndef POINTLEDGER_LEDGER_BACKGROUND_THREAD_H_
#define POINTLEDGER_LEDGER_BACKGROUND_THREAD_H_

#include <pthread.h>
#include <signal.h>

#include <thread>
#include <utility>

namespace pointledger {

// Starts fn on a new thread named `name` (at most 15 characters: what
// `top -H` and /proc/PID/task/TID/comm show) with every signal blocked (a
// new thread inherits its creator's mask; the creator's own is restored
// at once).
template <typename Fn>
std::thread BackgroundThread(const char* name, Fn&& fn) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  std::thread t(std::forward<Fn>(fn));
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_setname_np(t.native_handle(), name);
  return t;
}

}  // namespace pointledger

#endif  // POINTLEDGER_LEDGER_BACKGROUND_THREAD_H_
