// Python bindings of the compiled core: argument checks and GIL release only, no logic.
// Callers (pocketbnn.bitpack and friends) allocate outputs with numpy and pass them in.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "core/types.h"
#include "dispatch/config.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace pocketbnn {
namespace {

template <class T>
using CArray = nb::ndarray<T, nb::c_contig, nb::device::cpu>;

// Rows and channels of an array viewed as (rows, last axis).
struct RowsChannels {
  std::size_t rows, channels;
};

template <class T>
RowsChannels rows_channels(const CArray<T>& x, const char* what) {
  if (x.ndim() < 1) throw std::invalid_argument(std::string(what) + " must have at least 1 axis");
  const std::size_t channels = x.shape(x.ndim() - 1);
  return {channels == 0 ? 0 : x.size() / channels, channels};
}

void check_packed(const CArray<Word>& packed, RowsChannels rc, const char* what) {
  if (packed.size() != rc.rows * packed_words(rc.channels)) {
    throw std::invalid_argument(std::string(what) + " holds " + std::to_string(packed.size()) +
                                " words; expected " + std::to_string(rc.rows) + " rows x " +
                                std::to_string(packed_words(rc.channels)) + " words");
  }
}

void bitpack_f32(CArray<const float> x, CArray<Word> out) {
  const auto rc = rows_channels(x, "x");
  check_packed(out, rc, "out");
  nb::gil_scoped_release release;
  select_ukernel<ops::bitpack_f32>().fn(x.data(), rc.rows, rc.channels, out.data());
}

void bitpack_i8(CArray<const std::int8_t> x, std::int8_t zero_point, CArray<Word> out) {
  const auto rc = rows_channels(x, "x");
  check_packed(out, rc, "out");
  nb::gil_scoped_release release;
  select_ukernel<ops::bitpack_i8>().fn(x.data(), rc.rows, rc.channels, zero_point, out.data());
}

template <class Op, class T>
void unpack(CArray<const Word> packed, CArray<T> out) {
  const auto rc = rows_channels(out, "out");
  if (packed.size() != rc.rows * packed_words(rc.channels)) {
    throw std::invalid_argument("packed holds " + std::to_string(packed.size()) +
                                " words; out needs " + std::to_string(rc.rows) + " rows x " +
                                std::to_string(packed_words(rc.channels)) + " words");
  }
  nb::gil_scoped_release release;
  select_ukernel<Op>().fn(packed.data(), rc.rows, rc.channels, out.data());
}

}  // namespace
}  // namespace pocketbnn

NB_MODULE(_core, m) {
  using namespace pocketbnn;
  m.doc() = "pocketbnn compiled core: bit-packing and binary kernels with run-time ISA dispatch";
  m.attr("WORD_BITS") = kWordBits;

  m.def("bitpack_f32", &bitpack_f32, "x"_a, "out"_a);
  m.def("bitpack_i8", &bitpack_i8, "x"_a, "zero_point"_a, "out"_a);
  m.def("unpack_f32", &unpack<ops::unpack_f32, float>, "packed"_a, "out"_a);
  m.def("unpack_i8", &unpack<ops::unpack_i8, std::int8_t>, "packed"_a, "out"_a);

  m.def("active_isa", [] { return std::string(isa_name(active_isa())); });
  m.def("set_isa", [](const std::string& name) { set_isa(isa_from_name(name)); }, "name"_a);
  m.def("available_isas", [] {
    std::vector<std::string> names;
    for (Isa isa : kAllIsas) {
      if (isa_available(isa)) names.push_back(isa_name(isa));
    }
    return names;
  });
  m.def("list_ukernels", [](const std::string& op) {
    nb::list out;
    for (const auto& k : list_ukernels(op)) {
      nb::dict d;
      d["op"] = k.op;
      d["isa"] = std::string(isa_name(k.isa));
      d["name"] = k.name;
      d["available"] = isa_available(k.isa);
      out.append(d);
    }
    return out;
  }, "op"_a = "");
  m.def("selected_ukernel", &selected_ukernel_name, "op"_a);
}
