// SPDX-License-Identifier: MIT
/// \file
/// \brief The checkpoint format on byte spans: what `pnn::io::save`/`load` write to files and
/// what the embedded path reads from flash — standard library only, no heap, no iostream.
///
/// A checkpoint is a 32-byte header and a payload of *parts* ("network", "rule", …). Each part
/// names the C++ type it was written from (its type signature, compiler-neutral) and holds a
/// sequence of named entries — typed arrays with their shape — in the order the object's
/// `visit_state` visits them. Loading walks the destination's `visit_state` in the same order
/// and compares every entry's name, element type and shape with the file before a single
/// value is copied: a file of another network type, a truncated file, a flipped bit (CRC-32
/// over the payload) or a newer format version is reported and leaves the destination as it was.
///
/// Layout (little-endian throughout; big-endian hosts swap on the way):
///
///     header  "PNNSTATE" | u32 version | u32 header bytes (32) | u64 payload bytes
///             | u32 CRC-32 of the payload | u32 CRC-32 of the 28 bytes before it
///     payload u32 part count, then per part:
///             u16 role length, role | u32 signature length, signature | u64 entry bytes | entries
///     entry   u16 name length, name | u8 element type | u8 rank | u16 0 | u64 extent × rank | values
///
/// An object says what it holds with a member `template <class V> void visit_state(V& v)` (or a
/// free `visit_state(obj, v)` found by argument-dependent lookup) that calls, for every piece of
/// state, `v(name, x)` where `x` is an arithmetic scalar (`bool`, integers, `float`, `double`),
/// a `std::span<T>` whose extent the destination fixes (weights of a layer of known shape), or a
/// resizable container (`std::vector<T>`, `xt::xtensor<T, N>`: the file's shape is taken), and
/// `auto guard = v.scope("layer", i)` around nested objects so that entries have paths
/// ("layer1.cells"). Element types are `float`, `double`, `std::uint8_t`, `std::uint32_t`,
/// `std::uint64_t`, `std::int32_t` and `std::int64_t`; other integer scalars are stored as 64-bit.
#pragma once

#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string_view>
#include <type_traits>

#include <pnn/core/crc32.hpp>

namespace pnn {

/// The checkpoint format version this build writes; it reads every version up to this one.
inline constexpr std::uint32_t state_format_version = 1;

/// Element type codes of checkpoint entries (stable across versions).
enum class state_dtype : std::uint8_t { f32 = 1, f64 = 2, u8 = 3, u32 = 4, u64 = 5, i32 = 6, i64 = 7 };

/// Outcome of reading or writing a checkpoint on the embedded path: `ok`, or a message saying
/// what differs (hosted code turns it into a `pnn::error` naming the file).
struct state_status {
  bool ok = true;
  std::array<char, 320> text{};  ///< NUL-terminated message when `!ok`

  [[nodiscard]] std::string_view message() const noexcept { return std::string_view(text.data()); }
  explicit operator bool() const noexcept { return ok; }
};

/// Marks a span as the visiting object's own scratch copy (`v(name, span, state_scratch)`):
/// the reader fills it already in the checking pass, so the object can validate the values
/// (`v.reject(name, why)`) before anything of it changes, and apply them itself when
/// `v.applying()` (a tile that programs its parameters through `set_parameters`).
struct state_scratch_t {};
inline constexpr state_scratch_t state_scratch{};

/// One object stored in a checkpoint under `role` ("network", "rule", …).
template <class Obj>
struct state_part {
  std::string_view role;
  Obj& object;
};
template <class Obj>
state_part(std::string_view, Obj&) -> state_part<Obj>;

namespace detail {

// ---------------------------------------------------------------------------------------------
// Signatures: what a part was written from, in words that do not depend on the compiler.
//
// Compilers spell types differently (Clang drops template arguments equal to their defaults and
// writes `784UL`; GCC keeps them and writes `784`), so a signature is built from the names the
// library's policies carry: a free `state_signature(std::type_identity<T>, out)` found by
// argument-dependent lookup, or a static member `T::state_signature(out)`, calls
// `out(std::string_view)` with its parts (a network names its layers' kinds, extents,
// substrates, devices, noise policies, activations and value type, pnn/nn/state.hpp); objects
// without one are identified by their entries alone.

template <class T>
constexpr void signature_of(auto&& out) {
  if constexpr (requires { state_signature(std::type_identity<T>{}, out); }) state_signature(std::type_identity<T>{}, out);
  else if constexpr (requires { T::state_signature(out); }) T::state_signature(out);
  else out(std::string_view("state"));
}

/// Calls `f(char)` for every character of `T`'s signature.
template <class T, class F>
constexpr void for_each_signature_char(F&& f) {
  signature_of<T>([&](std::string_view s) {
    for (char c : s) f(c);
  });
}

template <class T>
constexpr std::size_t signature_length() {
  std::size_t n = 0;
  for_each_signature_char<T>([&](char) { ++n; });
  return n;
}

/// Writes `v` in decimal through `out(std::string_view)` ("dynamic" for `std::dynamic_extent`).
template <class Sink>
constexpr void signature_number(std::size_t v, Sink&& out) {
  if (v == std::dynamic_extent) {
    out(std::string_view("dynamic"));
    return;
  }
  char digits[24]{};
  std::size_t k = 24;
  do {
    digits[--k] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  out(std::string_view(digits + k, 24 - k));
}

// ---------------------------------------------------------------------------------------------
// Element types.

template <class T>
struct state_element;
template <> struct state_element<float> { static constexpr state_dtype code = state_dtype::f32; };
template <> struct state_element<double> { static constexpr state_dtype code = state_dtype::f64; };
template <> struct state_element<std::uint8_t> { static constexpr state_dtype code = state_dtype::u8; };
template <> struct state_element<std::uint32_t> { static constexpr state_dtype code = state_dtype::u32; };
template <> struct state_element<std::uint64_t> { static constexpr state_dtype code = state_dtype::u64; };
template <> struct state_element<std::int32_t> { static constexpr state_dtype code = state_dtype::i32; };
template <> struct state_element<std::int64_t> { static constexpr state_dtype code = state_dtype::i64; };

template <class T>
concept state_element_type = requires { state_element<T>::code; };

/// The type a scalar of type `T` is stored as: itself when it is an element type, `u8` for
/// `bool`, 64 bits for other integers (`std::size_t` is 32 bits on the Cortex-M path).
template <class T>
using stored_scalar_t = std::conditional_t<
    std::is_same_v<T, bool>, std::uint8_t,
    std::conditional_t<state_element_type<T>, T,
                       std::conditional_t<std::is_signed_v<T>, std::int64_t, std::uint64_t>>>;

inline constexpr const char* dtype_name(state_dtype d) noexcept {
  switch (d) {
    case state_dtype::f32: return "float32";
    case state_dtype::f64: return "float64";
    case state_dtype::u8: return "uint8";
    case state_dtype::u32: return "uint32";
    case state_dtype::u64: return "uint64";
    case state_dtype::i32: return "int32";
    case state_dtype::i64: return "int64";
  }
  return "unknown";
}

inline constexpr std::size_t dtype_size(std::uint8_t d) noexcept {
  switch (static_cast<state_dtype>(d)) {
    case state_dtype::u8: return 1;
    case state_dtype::f32:
    case state_dtype::u32:
    case state_dtype::i32: return 4;
    case state_dtype::f64:
    case state_dtype::u64:
    case state_dtype::i64: return 8;
  }
  return 0;
}

/// Containers whose size the file decides (`std::vector`, `xt::xtensor`).
template <class C>
concept resizable_vector = requires(C& c, std::size_t n) {
  typename C::value_type;
  c.resize(n);
  c.data();
  { c.size() } -> std::convertible_to<std::size_t>;
} && state_element_type<typename C::value_type>;

template <class C>
concept resizable_tensor = requires(C& c, const typename C::shape_type& s) {
  typename C::value_type;
  c.resize(s);
  c.data();
  c.shape();
  { c.dimension() } -> std::convertible_to<std::size_t>;
  { std::tuple_size<typename C::shape_type>::value } -> std::convertible_to<std::size_t>;
} && state_element_type<typename C::value_type>;

// ---------------------------------------------------------------------------------------------
// Little-endian byte access.

inline void put_bytes(std::byte* dst, const void* src, std::size_t element_size, std::size_t count) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    if (count != 0) std::memcpy(dst, src, element_size * count);
  } else {
    const auto* s = static_cast<const std::byte*>(src);
    for (std::size_t i = 0; i < count; ++i)
      for (std::size_t b = 0; b < element_size; ++b) dst[i * element_size + b] = s[i * element_size + element_size - 1 - b];
  }
}
inline void get_bytes(void* dst, const std::byte* src, std::size_t element_size, std::size_t count) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    if (count != 0) std::memcpy(dst, src, element_size * count);
  } else {
    auto* d = static_cast<std::byte*>(dst);
    for (std::size_t i = 0; i < count; ++i)
      for (std::size_t b = 0; b < element_size; ++b) d[i * element_size + b] = src[i * element_size + element_size - 1 - b];
  }
}
template <class U>
U load_le(const std::byte* p) noexcept {
  U v{};
  get_bytes(&v, p, sizeof(U), 1);
  return v;
}

inline constexpr std::array<char, 8> state_magic = {'P', 'N', 'N', 'S', 'T', 'A', 'T', 'E'};
inline constexpr std::size_t state_header_bytes = 32;

/// Message assembly into a fixed buffer (no heap on the embedded path).
struct message_builder {
  std::array<char, 320>& out;
  std::size_t n = 0;
  message_builder& add(std::string_view s) noexcept {
    for (char c : s)
      if (n + 1 < out.size()) out[n++] = c;
    out[n] = '\0';
    return *this;
  }
  message_builder& add(std::uint64_t v) noexcept {
    char digits[24];
    std::size_t k = 0;
    do {
      digits[k++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (k != 0)
      if (n + 1 < out.size()) out[n++] = digits[--k];
      else --k;
    out[n] = '\0';
    return *this;
  }
};

/// The path of the entry being visited ("layer1.noise.variation.gain_xi"), in a fixed buffer.
class state_path {
 public:
  class guard {
   public:
    explicit guard(state_path& p, std::size_t keep) noexcept : p_(&p), keep_(keep) {}
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    ~guard() { p_->truncate(keep_); }

   private:
    state_path* p_;
    std::size_t keep_;
  };

  [[nodiscard]] std::string_view view() const noexcept { return {buf_.data(), len_}; }
  /// Pushes `name` (and `index` when given) as a new path component.
  [[nodiscard]] std::size_t push(std::string_view name, std::size_t index, bool indexed) noexcept {
    const std::size_t keep = len_;
    if (len_ != 0) append(".");
    append(name);
    if (indexed) {
      char digits[24];
      std::size_t k = 0;
      do {
        digits[k++] = static_cast<char>('0' + index % 10);
        index /= 10;
      } while (index != 0);
      while (k != 0) append(std::string_view(&digits[--k], 1));
    }
    return keep;
  }
  /// The full name of entry `name` under the current path, valid until the next call.
  [[nodiscard]] std::string_view entry(std::string_view name) noexcept {
    const std::size_t keep = push(name, 0, false);
    const std::string_view v = view();
    entry_len_ = len_;
    len_ = keep;
    return {v.data(), entry_len_};
  }
  void truncate(std::size_t n) noexcept { len_ = n; }

 private:
  void append(std::string_view s) noexcept {
    for (char c : s)
      if (len_ < buf_.size()) buf_[len_++] = c;
  }
  std::array<char, 192> buf_{};
  std::size_t len_ = 0;
  std::size_t entry_len_ = 0;
};

/// What writer and reader share: the path of nested scopes.
class state_visitor_base {
 public:
  /// Enters a nested object: its entries are named `<path>.<name>` until the guard ends.
  [[nodiscard]] state_path::guard scope(std::string_view name) noexcept { return state_path::guard(path_, path_.push(name, 0, false)); }
  /// Enters element `index` of a sequence: entries `<path>.<name><index>.…`.
  [[nodiscard]] state_path::guard scope(std::string_view name, std::size_t index) noexcept {
    return state_path::guard(path_, path_.push(name, index, true));
  }

 protected:
  state_path path_{};
};

template <class Obj, class V>
void visit_part(Obj& obj, V& v) {
  if constexpr (requires { obj.visit_state(v); }) {
    obj.visit_state(v);
  } else {
    static_assert(requires { visit_state(obj, v); },
                  "pnn checkpoints: this object does not say what state it holds: give it a member "
                  "`template <class V> void visit_state(V& v)` (see pnn/core/state_format.hpp)");
    visit_state(obj, v);
  }
}

// ---------------------------------------------------------------------------------------------
// Writing (a first pass with `out` empty measures the size).

class state_writer : public state_visitor_base {
 public:
  static constexpr bool loading = false;
  /// False: writing changes nothing (objects refresh caches only after an applying load).
  [[nodiscard]] static constexpr bool applying() noexcept { return false; }

  explicit state_writer(std::span<std::byte> out) noexcept : out_(out) {}


  template <class T>
    requires std::is_arithmetic_v<T>
  void operator()(std::string_view name, T& x) {
    using S = stored_scalar_t<T>;
    const S s = static_cast<S>(x);
    entry(name, state_element<S>::code, nullptr, 0, &s, 1);
  }
  template <class T, std::size_t E>
    requires state_element_type<std::remove_const_t<T>>
  void operator()(std::string_view name, std::span<T, E> a) {
    const std::uint64_t d = a.size();
    entry(name, state_element<std::remove_const_t<T>>::code, &d, 1, a.data(), a.size());
  }
  template <class T, std::size_t E>
    requires state_element_type<std::remove_const_t<T>>
  void operator()(std::string_view name, std::span<T, E> a, state_scratch_t) {
    (*this)(name, a);
  }
  /// Nothing to reject when writing.
  void reject(std::string_view, const char*) noexcept {}
  template <class C>
    requires resizable_tensor<C>
  void operator()(std::string_view name, C& t) {
    constexpr std::size_t r = std::tuple_size<typename C::shape_type>::value;
    std::uint64_t dims[r == 0 ? 1 : r];
    for (std::size_t k = 0; k < r; ++k) dims[k] = t.shape()[k];
    entry(name, state_element<typename C::value_type>::code, dims, r, t.data(), t.size());
  }
  template <class C>
    requires(resizable_vector<C> && !resizable_tensor<C>)
  void operator()(std::string_view name, C& v) {
    const std::uint64_t d = v.size();
    entry(name, state_element<typename C::value_type>::code, &d, 1, v.data(), v.size());
  }

  [[nodiscard]] std::size_t position() const noexcept { return pos_; }
  void raw(const void* p, std::size_t bytes) noexcept {
    if (!out_.empty() && pos_ + bytes <= out_.size() && bytes != 0) std::memcpy(out_.data() + pos_, p, bytes);
    pos_ += bytes;
  }
  template <class U>
  void put(U v) noexcept {
    if (!out_.empty() && pos_ + sizeof(U) <= out_.size()) put_bytes(out_.data() + pos_, &v, sizeof(U), 1);
    pos_ += sizeof(U);
  }
  void text(std::string_view s) noexcept { raw(s.data(), s.size()); }
  /// Patches a u64 written earlier at `at`.
  void patch_u64(std::size_t at, std::uint64_t v) noexcept {
    if (!out_.empty() && at + 8 <= out_.size()) put_bytes(out_.data() + at, &v, 8, 1);
  }

 private:
  void entry(std::string_view name, state_dtype code, const std::uint64_t* dims, std::size_t rank, const void* data,
             std::size_t count) noexcept {
    const std::string_view full = path_.entry(name);
    put(static_cast<std::uint16_t>(full.size()));
    text(full);
    put(static_cast<std::uint8_t>(code));
    put(static_cast<std::uint8_t>(rank));
    put(std::uint16_t{0});
    for (std::size_t k = 0; k < rank; ++k) put(dims[k]);
    const std::size_t es = dtype_size(static_cast<std::uint8_t>(code));
    if (!out_.empty() && pos_ + es * count <= out_.size()) put_bytes(out_.data() + pos_, data, es, count);
    pos_ += es * count;
  }

  std::span<std::byte> out_;
  std::size_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Reading: a checking pass compares every entry, then an applying pass copies.

class state_reader : public state_visitor_base {
 public:
  static constexpr bool loading = true;
  /// True in the pass that copies values into the destination (after the checking pass
  /// succeeded): the moment for an object to refresh what it derives from its state.
  [[nodiscard]] bool applying() const noexcept { return apply_; }

  state_reader(std::span<const std::byte> entries, bool apply, state_status& status) noexcept
      : in_(entries), apply_(apply), status_(status) {}


  template <class T>
    requires std::is_arithmetic_v<T>
  void operator()(std::string_view name, T& x) {
    using S = stored_scalar_t<T>;
    const std::byte* p = next(name, state_element<S>::code, 0, nullptr, false);
    if (p == nullptr) return;
    const S s = load_le<S>(p);
    if constexpr (std::is_same_v<T, bool>) {
      if (s > 1) return fail_value(name, "is not a boolean (0 or 1)");
    } else if constexpr (std::is_integral_v<T> && !std::is_same_v<S, T>) {
      if (s > static_cast<S>(std::numeric_limits<T>::max()) ||
          (std::is_signed_v<T> && s < static_cast<S>(std::numeric_limits<T>::min())))
        return fail_value(name, "does not fit this platform's integer type");
    }
    if (apply_) x = static_cast<T>(s);
  }
  template <class T, std::size_t E>
    requires state_element_type<T>
  void operator()(std::string_view name, std::span<T, E> a) {
    std::uint64_t d = a.size();
    const std::byte* p = next(name, state_element<T>::code, 1, &d, false);
    if (p != nullptr && apply_) get_bytes(a.data(), p, sizeof(T), a.size());
  }
  template <class T, std::size_t E>
    requires state_element_type<T>
  void operator()(std::string_view name, std::span<T, E> a, state_scratch_t) {
    std::uint64_t d = a.size();
    const std::byte* p = next(name, state_element<T>::code, 1, &d, false);
    if (p != nullptr) get_bytes(a.data(), p, sizeof(T), a.size());
  }
  /// Records that entry `name`'s values are unacceptable (checking pass; the load then fails
  /// and nothing changes).
  void reject(std::string_view name, const char* why) noexcept {
    if (status_.ok && !apply_) fail_value(name, why);
  }
  template <class C>
    requires resizable_tensor<C>
  void operator()(std::string_view name, C& t) {
    constexpr std::size_t r = std::tuple_size<typename C::shape_type>::value;
    std::uint64_t dims[r == 0 ? 1 : r];
    const std::byte* p = next(name, state_element<typename C::value_type>::code, r, dims, true);
    if (p == nullptr || !apply_) return;
    typename C::shape_type s{};
    for (std::size_t k = 0; k < r; ++k) s[k] = static_cast<std::size_t>(dims[k]);
    t.resize(s);
    get_bytes(t.data(), p, sizeof(typename C::value_type), t.size());
  }
  template <class C>
    requires(resizable_vector<C> && !resizable_tensor<C>)
  void operator()(std::string_view name, C& v) {
    std::uint64_t d = 0;
    const std::byte* p = next(name, state_element<typename C::value_type>::code, 1, &d, true);
    if (p == nullptr || !apply_) return;
    v.resize(static_cast<std::size_t>(d));
    get_bytes(v.data(), p, sizeof(typename C::value_type), v.size());
  }

  /// After the visit: every entry of the part was consumed.
  void finish() noexcept {
    if (status_.ok && pos_ != in_.size()) {
      fail().add("the file has more state than this object (next entry '").add(peek_name()).add("')");
    }
  }

 private:
  message_builder fail() noexcept {
    status_.ok = false;
    return message_builder{status_.text};
  }
  void fail_value(std::string_view name, const char* what) noexcept {
    fail().add("entry '").add(path_.entry(name)).add("' ").add(what);
  }
  std::string_view peek_name() const noexcept {
    if (pos_ + 2 > in_.size()) return "?";
    const std::size_t len = load_le<std::uint16_t>(in_.data() + pos_);
    if (pos_ + 2 + len > in_.size()) return "?";
    return {reinterpret_cast<const char*>(in_.data() + pos_ + 2), len};
  }

  // Reads the next entry's header, compares it with what the destination expects and returns
  // its values (nullptr after a mismatch, which is recorded once in `status_`).
  const std::byte* next(std::string_view name, state_dtype code, std::size_t rank, std::uint64_t* dims, bool resizable) noexcept {
    if (!status_.ok) return nullptr;
    const std::string_view full = path_.entry(name);
    auto need = [&](std::size_t n) { return n <= in_.size() - pos_; };
    if (!need(2)) {
      fail().add("the file ends before entry '").add(full).add("'");
      return nullptr;
    }
    const std::size_t len = load_le<std::uint16_t>(in_.data() + pos_);
    if (!need(2 + len + 4)) {
      fail().add("the file ends inside the entry before '").add(full).add("'");
      return nullptr;
    }
    const std::string_view got(reinterpret_cast<const char*>(in_.data() + pos_ + 2), len);
    if (got != full) {
      fail().add("entry '").add(got).add("' in the file where this object has '").add(full).add("'");
      return nullptr;
    }
    std::size_t p = pos_ + 2 + len;
    const std::uint8_t dt = static_cast<std::uint8_t>(in_[p]);
    const std::size_t file_rank = static_cast<std::uint8_t>(in_[p + 1]);
    p += 4;
    if (dt != static_cast<std::uint8_t>(code)) {
      fail().add("entry '").add(full).add("' holds ").add(dtype_size(dt) != 0 ? dtype_name(static_cast<state_dtype>(dt)) : "an unknown type")
          .add(" values; this object holds ").add(dtype_name(code));
      return nullptr;
    }
    if (file_rank != rank) {
      fail().add("entry '").add(full).add("' has rank ").add(file_rank).add(" in the file, ").add(rank).add(" here");
      return nullptr;
    }
    if (!need(p - pos_ + 8 * rank)) {
      fail().add("the file ends inside entry '").add(full).add("'");
      return nullptr;
    }
    std::uint64_t count = 1;
    for (std::size_t k = 0; k < rank; ++k) {
      const std::uint64_t d = load_le<std::uint64_t>(in_.data() + p + 8 * k);
      if (!resizable && d != dims[k]) {
        fail().add("entry '").add(full).add("' has ").add(d).add(" values along axis ").add(k).add(" in the file, ")
            .add(dims[k]).add(" here");
        return nullptr;
      }
      if (resizable) dims[k] = d;
      if (d != 0 && count > (std::uint64_t(1) << 62) / d) {
        fail().add("entry '").add(full).add("' has an impossible shape");
        return nullptr;
      }
      count *= d;
    }
    p += 8 * rank;
    const std::uint64_t bytes = count * dtype_size(dt);
    if (bytes > in_.size() - p) {
      fail().add("the file ends inside entry '").add(full).add("' (").add(bytes).add(" bytes of values expected, ")
          .add(in_.size() - p).add(" left)");
      return nullptr;
    }
    pos_ = p + static_cast<std::size_t>(bytes);
    return in_.data() + p;
  }

  std::span<const std::byte> in_;
  bool apply_;
  state_status& status_;
  std::size_t pos_ = 0;
};

template <class Obj>
void write_part(state_writer& w, const state_part<Obj>& part) {
  using O = std::remove_cvref_t<Obj>;
  w.put(static_cast<std::uint16_t>(part.role.size()));
  w.text(part.role);
  w.put(static_cast<std::uint32_t>(signature_length<O>()));
  for_each_signature_char<O>([&](char c) { w.raw(&c, 1); });
  const std::size_t at = w.position();
  w.put(std::uint64_t{0});
  const std::size_t start = w.position();
  visit_part(const_cast<O&>(part.object), w);  // the writer only reads
  w.patch_u64(at, static_cast<std::uint64_t>(w.position() - start));
}

inline std::uint32_t header_crc(const std::byte* h) noexcept { return crc32(std::span<const std::byte>(h, 28)); }

/// Finds part `role` in `payload`; checks its signature against `O`'s. Returns its entries.
template <class O>
std::span<const std::byte> find_part(std::span<const std::byte> payload, std::string_view role, state_status& st) {
  auto fail = [&] {
    st.ok = false;
    return message_builder{st.text};
  };
  if (payload.size() < 4) {
    fail().add("the payload is too short");
    return {};
  }
  const std::uint32_t parts = load_le<std::uint32_t>(payload.data());
  std::size_t p = 4;
  for (std::uint32_t k = 0; k < parts; ++k) {
    if (payload.size() - p < 2) break;
    const std::size_t rl = load_le<std::uint16_t>(payload.data() + p);
    if (payload.size() - p - 2 < rl + 4) break;
    const std::string_view r(reinterpret_cast<const char*>(payload.data() + p + 2), rl);
    p += 2 + rl;
    const std::size_t sl = load_le<std::uint32_t>(payload.data() + p);
    if (payload.size() - p - 4 < std::uint64_t(sl) + 8) break;
    const std::string_view sig(reinterpret_cast<const char*>(payload.data() + p + 4), sl);
    p += 4 + sl;
    const std::uint64_t eb = load_le<std::uint64_t>(payload.data() + p);
    p += 8;
    if (eb > payload.size() - p) break;
    if (r == role) {
      // Compare with this build's signature of O, character by character (no heap).
      std::size_t i = 0;
      bool same = true;
      for_each_signature_char<O>([&](char c) {
        if (i >= sig.size() || sig[i] != c) same = false;
        ++i;
      });
      if (!same || i != sig.size()) {
        auto m = fail().add("the ").add(role).add(" in the file is a ");
        m.add(sig.substr(0, 120)).add(sig.size() > 120 ? "…" : "").add("; this ").add(role).add(" is a ");
        std::array<char, 121> mine{};
        std::size_t n = 0;
        for_each_signature_char<O>([&](char c) {
          if (n < 120) mine[n++] = c;
        });
        m.add(std::string_view(mine.data(), n)).add(i > 120 ? "…" : "");
        return {};
      }
      return payload.subspan(p, static_cast<std::size_t>(eb));
    }
    p += static_cast<std::size_t>(eb);
  }
  fail().add("the file holds no readable '").add(role).add("' state");
  return {};
}

}  // namespace detail

/// \brief Bytes a checkpoint of `parts` takes (header included).
template <class... Obj>
[[nodiscard]] std::size_t state_size(const state_part<Obj>&... parts) {
  detail::state_writer w({});
  w.put(std::uint32_t{0});
  (detail::write_part(w, parts), ...);
  return detail::state_header_bytes + w.position();
}

/// \brief Writes a checkpoint of `parts` into `out` (at least `state_size(parts...)` bytes).
/// Returns the bytes written, or 0 when `out` is too small.
template <class... Obj>
std::size_t write_state(std::span<std::byte> out, const state_part<Obj>&... parts) {
  const std::size_t total = state_size(parts...);
  if (out.size() < total) return 0;
  std::span<std::byte> payload = out.subspan(detail::state_header_bytes, total - detail::state_header_bytes);
  detail::state_writer w(payload);
  w.put(static_cast<std::uint32_t>(sizeof...(parts)));
  (detail::write_part(w, parts), ...);
  detail::state_writer h(out.subspan(0, detail::state_header_bytes));
  h.raw(detail::state_magic.data(), 8);
  h.put(state_format_version);
  h.put(static_cast<std::uint32_t>(detail::state_header_bytes));
  h.put(static_cast<std::uint64_t>(payload.size()));
  h.put(crc32(std::span<const std::byte>(payload.data(), payload.size())));
  h.put(detail::header_crc(out.data()));
  return total;
}

/// \brief Loads `parts` from the checkpoint in `in`. Every part is found by its role, its type
/// signature is compared with the destination's, and every entry is checked (name, element
/// type, shape) before any destination changes: on a failure the returned status says what
/// differs and nothing was written. Parts of the file not asked for are ignored.
template <class... Obj>
[[nodiscard]] state_status read_state(std::span<const std::byte> in, const state_part<Obj>&... parts) {
  state_status st;
  auto fail = [&] {
    st.ok = false;
    return detail::message_builder{st.text};
  };
  if (in.size() < detail::state_header_bytes) {
    fail().add("not a pnn checkpoint: ").add(in.size()).add(" bytes, shorter than the header");
    return st;
  }
  if (std::memcmp(in.data(), detail::state_magic.data(), 8) != 0) {
    fail().add("not a pnn checkpoint (no PNNSTATE magic)");
    return st;
  }
  if (detail::load_le<std::uint32_t>(in.data() + 28) != detail::header_crc(in.data())) {
    fail().add("the header is corrupt (CRC-32 mismatch)");
    return st;
  }
  const std::uint32_t version = detail::load_le<std::uint32_t>(in.data() + 8);
  if (version == 0 || version > state_format_version) {
    fail().add("format version ").add(version).add(" is newer than this build reads (up to ").add(state_format_version).add(")");
    return st;
  }
  const std::uint32_t hb = detail::load_le<std::uint32_t>(in.data() + 12);
  const std::uint64_t pb = detail::load_le<std::uint64_t>(in.data() + 16);
  if (hb < detail::state_header_bytes || hb > in.size() || pb > in.size() - hb) {
    fail().add("truncated: the header announces ").add(std::uint64_t(hb) + pb).add(" bytes, the file has ").add(in.size());
    return st;
  }
  const std::span<const std::byte> payload = in.subspan(hb, static_cast<std::size_t>(pb));
  if (crc32(payload) != detail::load_le<std::uint32_t>(in.data() + 24)) {
    fail().add("the payload is corrupt (CRC-32 mismatch)");
    return st;
  }
  // Check every part completely, then copy.
  std::array<std::span<const std::byte>, sizeof...(Obj)> entries{};
  std::size_t k = 0;
  auto check = [&](const auto& part) {
    using O = std::remove_cvref_t<decltype(part.object)>;
    if (!st.ok) return;
    entries[k] = detail::find_part<O>(payload, part.role, st);
    if (st.ok) {
      detail::state_reader r(entries[k], false, st);
      detail::visit_part(part.object, r);
      r.finish();
    }
    ++k;
  };
  (check(parts), ...);
  if (!st.ok) return st;
  k = 0;
  auto apply = [&](const auto& part) {
    detail::state_reader r(entries[k++], true, st);
    detail::visit_part(part.object, r);
  };
  (apply(parts), ...);
  return st;
}

}  // namespace pnn
