// Writes the state target's seed corpus (tests/fuzz/corpus/state/): for
// each state table and `meta`, its first rows changed each way the input
// format has (tests/fuzz/state_input.h), then transactions of every kind
// over them; and inputs that change nothing, or change a bit and put it
// back, which must audit clean.
//
//   build-fuzz/fuzz/state_seeds tests/fuzz/corpus/state
#include <cstdio>
#include <fstream>
#include <string>

#include "tests/fuzz/state_input.h"

namespace pointledger::fuzz {
namespace {

bool Write(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  return static_cast<bool>(out.flush());
}

const char* kChoiceNames[kStateTableChoices] = {
    "ids",    "programs", "accounts", "lots",     "expiry",   "holds",  "hold_deadlines", "member_holds",
    "history", "reversed", "referees", "partners", "prices", "flows", "meta"};

int WriteAll(const std::string& corpus) {
  bool ok = true;
  auto write = [&](const std::string& name, const StateInputWriter& w) {
    ok = Write(corpus + "/" + name, w.bytes()) && ok;
  };
  // Every menu item (state_fuzz.cc: 23 transactions, the clock moved on,
  // the sweep) over an unchanged state; then a short mix after each edit.
  {
    StateInputWriter a, b;
    a.Menu({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15});
    b.Menu({16, 17, 18, 19, 20, 21, 22, 23, 24, 23, 24, 2, 9, 13, 7, 14});
    write("unchanged_menu_a", a);
    write("unchanged_menu_b", b);
  }
  const std::initializer_list<uint8_t> mix = {0, 2, 3, 7, 9, 14, 18, 23, 24};
  write("bit_flipped_back", StateInputWriter()
                                .Edit(Op::kFlipBit, 2, 1, 10, 3)
                                .Edit(Op::kFlipBit, 2, 1, 10, 3)
                                .Menu(mix));
  for (uint8_t t = 0; t < kStateTableChoices; ++t) {
    const std::string name = kChoiceNames[t];
    write(name + "_flip", StateInputWriter().Edit(Op::kFlipBit, t, 0, 3, 1).Menu(mix));
    write(name + "_word", StateInputWriter().Edit(Op::kSetWord, t, 1, 0, 6).Menu(mix));
    write(name + "_truncate", StateInputWriter().Edit(Op::kTruncate, t, 2, 5, 0).Menu(mix));
    write(name + "_append", StateInputWriter().Edit(Op::kAppend, t, 0, 0, 0, "\x01").Menu(mix));
    write(name + "_key", StateInputWriter().Edit(Op::kKeyOverwrite, t, 0, 15, 1).Menu(mix));
    write(name + "_delete", StateInputWriter().Edit(Op::kDelete, t, 1, 0, 0).Menu(mix));
    write(name + "_insert", StateInputWriter().Edit(Op::kInsert, t, 0, 7, 0x20).Menu(mix));
    write(name + "_copy", StateInputWriter().Edit(Op::kCopyValue, t, 0, 0, 0).Menu(mix));
  }
  // Several edits at once, and the whole menu after them: longer inputs,
  // so that libFuzzer's length limit starts where edits combine.
  write("balance_lot_hold_words", StateInputWriter()
                                      .Edit(Op::kSetWord, 2, 3, 10, 5)
                                      .Edit(Op::kSetWord, 3, 0, 0, 2)
                                      .Edit(Op::kSetWord, 5, 0, 40, 9)
                                      .Edit(Op::kFlipBit, 6, 0, 2, 7)
                                      .Menu({0, 2, 3, 6, 7, 8, 9, 10, 13, 14, 18, 19, 21, 23, 24}));
  write("rows_moved", StateInputWriter()
                          .Edit(Op::kKeyOverwrite, 3, 1, 20, 0, std::string(8, '\x7f'))
                          .Edit(Op::kKeyResize, 8, 2, 23, 0)
                          .Edit(Op::kInsert, 12, 0, 3, 0, std::string("\x10\0\0\0\0\0\0\0", 8))
                          .Edit(Op::kCopyValue, 5, 0, 0, 0)
                          .Menu({23, 24, 5, 19, 20, 16, 15, 14, 12, 11, 4, 1}));
  write("checkpoint_moved_and_put_back", StateInputWriter()
                                             .Edit(Op::kSetWord, 14, 0, 0, 6)
                                             .Edit(Op::kSetWord, 14, 0, 0, 5)
                                             .Menu({0, 2, 7, 14, 23, 24}));
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace pointledger::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: state_seeds CORPUS_DIR\n");
    return 2;
  }
  return pointledger::fuzz::WriteAll(argv[1]);
}
