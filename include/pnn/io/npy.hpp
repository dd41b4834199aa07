// SPDX-License-Identifier: MIT
/// \file
/// \brief NumPy `.npy` and `.npz` files: hand pnn's arrays to Python (`np.load`) and read them back.
///
/// Written from the NumPy format description (`numpy.lib.format`, NEP 1) and PKWARE's ZIP
/// application note. A `.npy` file is a magic string, a version, a little-endian header length,
/// an ASCII Python dict literal (`descr`, `fortran_order`, `shape`) padded so that the data starts
/// at a multiple of 64 bytes, then the raw elements. An `.npz` file is a ZIP archive of `.npy`
/// members; pnn writes and reads only uncompressed ("stored") members without ZIP64 records:
/// what `np.savez` produces (`np.savez_compressed` deflates, and is refused by name), up to 4 GiB
/// for pnn's own archives and 2 GiB for Python's, which switches to ZIP64 past that.
///
/// Only the element types a physical network exports are supported: `<f4`, `<f8`, `|u1`, `<u4`,
/// `<u8`, `<i8`, in C (row-major) order. Files are written through a temporary and a rename, so a
/// crash or a full disk never leaves a half-written target behind. Every defect of a file read
/// is a `pnn::error` naming the file (and the archive member) and the defect.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <xtensor/xexpression.hpp>
#include <xtensor/xtensor.hpp>

#include <pnn/core/crc32.hpp>
#include <pnn/core/error.hpp>

namespace pnn::io {

/// \brief One NumPy array as it lies in a `.npy` file: dtype string, shape and raw element bytes.
///
/// `data` holds the elements exactly as the file does (little-endian, C order), so saving and
/// loading copy bytes and never reinterpret them; `make_npy` and `values` convert from and to the
/// host's byte order.
struct npy_array {
  std::string dtype{};                ///< NumPy descr: "<f4", "<f8", "|u1", "<u4", "<u8" or "<i8"
  std::vector<std::size_t> shape{};   ///< extents, outermost first; empty for a 0-d array
  std::vector<std::byte> data{};      ///< product(shape) elements, little-endian, row-major
};

namespace detail {

/// Reports a file or argument error: throws `pnn::error`, or goes through the violation handler
/// and traps when exceptions are off (nothing is ever half-loaded or half-written silently).
[[noreturn]] inline void npy_fail(const std::string& what) {
#if PNN_HAS_EXCEPTIONS
  ::pnn::throw_error(what);
#else
  if (::pnn::detail::g_violation_handler != nullptr) ::pnn::detail::g_violation_handler(what.c_str(), "", 0);
  ::pnn::detail::trap();
#endif
}

/// The NumPy descr of element type `T`, or "" when pnn does not export `T`. Integers go by size
/// and signedness rather than by name, so `std::size_t` and `unsigned long long` both map to
/// "<u8"; character types and bool are excluded because NumPy gives them other meanings.
template <class T>
consteval std::string_view npy_descr_of() {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<U, float>) {
    return std::numeric_limits<float>::is_iec559 && sizeof(float) == 4 ? "<f4" : "";
  } else if constexpr (std::is_same_v<U, double>) {
    return std::numeric_limits<double>::is_iec559 && sizeof(double) == 8 ? "<f8" : "";
  } else if constexpr (std::is_integral_v<U> && !std::is_same_v<U, bool> && !std::is_same_v<U, char> &&
                       !std::is_same_v<U, wchar_t> && !std::is_same_v<U, char8_t> &&
                       !std::is_same_v<U, char16_t> && !std::is_same_v<U, char32_t>) {
    if constexpr (std::is_unsigned_v<U>) {
      if constexpr (sizeof(U) == 1) return "|u1";
      else if constexpr (sizeof(U) == 4) return "<u4";
      else if constexpr (sizeof(U) == 8) return "<u8";
      else return "";
    } else {
      if constexpr (sizeof(U) == 8) return "<i8";
      else return "";
    }
  } else {
    return "";
  }
}

}  // namespace detail

/// \brief An element type with a NumPy dtype that pnn reads and writes.
///
/// float, double, an 8-, 32- or 64-bit unsigned integer, or a 64-bit signed integer.
template <class T>
concept npy_element = !detail::npy_descr_of<T>().empty();

/// \brief The NumPy descr string of `T` ("<f4" for float, ...).
template <npy_element T>
inline constexpr std::string_view npy_dtype = detail::npy_descr_of<T>();

namespace detail {

static_assert(std::endian::native == std::endian::little || std::endian::native == std::endian::big,
              "pnn::io: mixed-endian hosts are not supported");

struct npy_dtype_info {
  std::string_view descr;
  std::size_t size;
};

inline constexpr std::array<npy_dtype_info, 6> npy_dtypes{
    {{"<f4", 4}, {"<f8", 8}, {"|u1", 1}, {"<u4", 4}, {"<u8", 8}, {"<i8", 8}}};

inline constexpr std::string_view npy_supported_dtypes = "<f4, <f8, |u1, <u4, <u8, <i8";

/// Bytes per element of a supported descr; 0 for any other.
inline std::size_t npy_item_size(std::string_view descr) noexcept {
  for (const auto& d : npy_dtypes)
    if (d.descr == descr) return d.size;
  return 0;
}

inline void npy_reverse_each(std::byte* p, std::size_t count, std::size_t size) noexcept {
  for (std::size_t i = 0; i < count; ++i) std::reverse(p + i * size, p + (i + 1) * size);
}

/// Copies `n` host-order elements into little-endian bytes.
template <class T>
void npy_to_little(std::byte* dst, const T* src, std::size_t n) noexcept {
  if (n == 0) return;
  std::memcpy(dst, src, n * sizeof(T));
  if constexpr (std::endian::native == std::endian::big && sizeof(T) > 1) npy_reverse_each(dst, n, sizeof(T));
}

/// Copies `n` little-endian elements into host order.
template <class T>
void npy_from_little(T* dst, const std::byte* src, std::size_t n) noexcept {
  if (n == 0) return;
  std::memcpy(dst, src, n * sizeof(T));
  if constexpr (std::endian::native == std::endian::big && sizeof(T) > 1)
    npy_reverse_each(reinterpret_cast<std::byte*>(dst), n, sizeof(T));
}

/// Sets `bytes` to item × product(shape); false when that does not fit in `std::size_t`. A zero
/// extent makes the array empty whatever the others are, as in NumPy.
inline bool npy_shape_bytes(const std::vector<std::size_t>& shape, std::size_t item, std::size_t& bytes) noexcept {
  if (std::find(shape.begin(), shape.end(), std::size_t{0}) != shape.end()) {
    bytes = 0;
    return true;
  }
  std::size_t n = item;
  for (const std::size_t d : shape) {
    if (n > std::numeric_limits<std::size_t>::max() / d) return false;
    n *= d;
  }
  bytes = n;
  return true;
}

/// The shape as Python writes a tuple: "()", "(5,)", "(3, 4)". This is also what the header holds.
inline std::string npy_shape_text(const std::vector<std::size_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i != 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ',';
  return s + ")";
}

inline std::string npy_hex(std::uint64_t v, std::size_t digits) {
  std::string s(digits, '0');
  for (std::size_t i = digits; i-- > 0; v >>= 4) s[i] = "0123456789abcdef"[v & 15u];
  return s;
}

/// Checks that `a` has a supported dtype and exactly the bytes its shape needs; returns that size.
inline std::size_t npy_checked_data_size(const npy_array& a, const std::string& where) {
  const std::size_t item = npy_item_size(a.dtype);
  if (item == 0) {
    npy_fail(where + "unsupported dtype '" + a.dtype + "' (supported: " + std::string(npy_supported_dtypes) + ")");
  }
  std::size_t bytes = 0;
  if (!npy_shape_bytes(a.shape, item, bytes)) {
    npy_fail(where + "shape " + npy_shape_text(a.shape) + " overflows size_t");
  }
  if (a.data.size() != bytes) {
    npy_fail(where + "data holds " + std::to_string(a.data.size()) + " bytes, but dtype '" + a.dtype +
             "' and shape " + npy_shape_text(a.shape) + " need " + std::to_string(bytes));
  }
  return bytes;
}

inline void npy_put_le(std::vector<std::byte>& out, std::uint64_t v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xffu));
}

inline std::uint32_t npy_get_le32(const std::byte* p) noexcept {
  std::uint32_t v = 0;
  for (std::size_t i = 4; i-- > 0;) v = (v << 8) | std::to_integer<std::uint32_t>(p[i]);
  return v;
}

inline std::uint16_t npy_get_le16(const std::byte* p) noexcept {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) | (std::to_integer<unsigned>(p[1]) << 8));
}

inline constexpr std::array<unsigned char, 6> npy_magic{0x93, 'N', 'U', 'M', 'P', 'Y'};

/// The magic, version, header length and padded header dict of `a` (a validated array).
inline std::vector<std::byte> npy_header(const npy_array& a) {
  std::string dict = "{'descr': '" + a.dtype + "', 'fortran_order': False, 'shape': " + npy_shape_text(a.shape) + ", }";
  // NumPy's own writer leaves room for the outermost extent to grow to 21 digits (so that a file
  // can be appended to in place); doing the same keeps our files identical to recent np.save output.
  if (!a.shape.empty()) dict.append(21 - std::to_string(a.shape.front()).size(), ' ');
  // Like NumPy, pad with 1 to 64 spaces (never 0) before the final newline, and use version 1.0
  // unless the header outgrows its 16-bit length (thousands of dimensions).
  const auto padding = [&](std::size_t prefix_size) { return 64 - (prefix_size + dict.size() + 1) % 64; };
  const bool v1 = dict.size() + 1 + padding(10) <= 0xFFFF;
  const std::size_t prefix = v1 ? 10 : 12;
  const std::size_t pad = padding(prefix);
  const std::size_t header_len = dict.size() + pad + 1;
  std::vector<std::byte> out;
  out.reserve(prefix + header_len);
  for (const unsigned char c : npy_magic) out.push_back(static_cast<std::byte>(c));
  out.push_back(std::byte{v1 ? std::uint8_t{1} : std::uint8_t{2}});
  out.push_back(std::byte{0});
  npy_put_le(out, header_len, v1 ? 2 : 4);
  for (const char c : dict) out.push_back(static_cast<std::byte>(c));
  out.insert(out.end(), pad, std::byte{' '});
  out.push_back(std::byte{'\n'});
  return out;
}

/// A parser of the header's Python dict literal. It accepts what NumPy and other writers produce
/// (either quote, any key order, whitespace, a trailing comma, Python 2's `3L`) but nothing that
/// would need evaluating Python.
class npy_header_parser {
 public:
  npy_header_parser(std::string_view text, const std::string& where) : text_(text), where_(where) {}

  void parse(std::string& descr, bool& fortran_order, std::vector<std::size_t>& shape) {
    bool have_descr = false, have_order = false, have_shape = false;
    skip_space();
    expect('{');
    for (;;) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = string_literal("a quoted key");
      skip_space();
      expect(':');
      skip_space();
      if (key == "descr") {
        once(have_descr, key);
        if (peek() != '\'' && peek() != '"') {
          npy_fail(where_ + "unsupported dtype: structured (record) dtypes are not supported (supported: " +
                   std::string(npy_supported_dtypes) + ")");
        }
        descr = string_literal("the descr string");
      } else if (key == "fortran_order") {
        once(have_order, key);
        if (take_word("True")) fortran_order = true;
        else if (take_word("False")) fortran_order = false;
        else malformed("True or False");
      } else if (key == "shape") {
        once(have_shape, key);
        shape = tuple();
      } else {
        npy_fail(where_ + "malformed header: unexpected key '" + key + "' in " + quoted_text());
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') malformed("',' or '}'");
    }
    ++pos_;
    skip_space();
    if (pos_ != text_.size()) malformed("the end of the header after '}'");
    if (!have_descr) npy_fail(where_ + "malformed header: no 'descr' key in " + quoted_text());
    if (!have_order) npy_fail(where_ + "malformed header: no 'fortran_order' key in " + quoted_text());
    if (!have_shape) npy_fail(where_ + "malformed header: no 'shape' key in " + quoted_text());
  }

 private:
  [[nodiscard]] char peek() const noexcept { return pos_ < text_.size() ? text_[pos_] : '\0'; }

  void skip_space() noexcept {
    while (pos_ < text_.size() && std::string_view(" \n\t\r").find(text_[pos_]) != std::string_view::npos) ++pos_;
  }

  [[nodiscard]] std::string quoted_text() const {
    std::string s;
    for (const char c : text_.substr(0, 160)) s += (c >= 0x20 && c < 0x7f) ? c : '?';
    return "\"" + s + (text_.size() > 160 ? "...\"" : "\"");
  }

  [[noreturn]] void malformed(const char* expected) const {
    npy_fail(where_ + "malformed header: expected " + expected + " at character " + std::to_string(pos_) + " of " +
             quoted_text());
  }

  void expect(char c) {
    if (peek() != c) malformed(std::string("'").append(1, c).append("'").c_str());
    ++pos_;
  }

  void once(bool& seen, const std::string& key) const {
    if (seen) npy_fail(where_ + "malformed header: key '" + key + "' appears twice in " + quoted_text());
    seen = true;
  }

  bool take_word(std::string_view w) noexcept {
    if (text_.substr(pos_, w.size()) != w) return false;
    pos_ += w.size();
    return true;
  }

  std::string string_literal(const char* what) {
    const char q = peek();
    if (q != '\'' && q != '"') malformed(what);
    const std::size_t end = text_.find(q, pos_ + 1);
    if (end == std::string_view::npos) malformed("a closing quote");
    std::string s(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return s;
  }

  std::vector<std::size_t> tuple() {
    std::vector<std::size_t> dims;
    expect('(');
    for (;;) {
      skip_space();
      if (peek() == ')') break;
      if (peek() < '0' || peek() > '9') malformed("a non-negative integer extent or ')'");
      std::size_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        const auto digit = static_cast<std::size_t>(peek() - '0');
        if (v > (std::numeric_limits<std::size_t>::max() - digit) / 10) {
          npy_fail(where_ + "malformed header: an extent of the shape overflows size_t in " + quoted_text());
        }
        v = v * 10 + digit;
        ++pos_;
      }
      if (peek() == 'L' || peek() == 'l') ++pos_;
      dims.push_back(v);
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != ')') malformed("',' or ')' in the shape");
    }
    ++pos_;
    return dims;
  }

  std::string_view text_;
  const std::string& where_;
  std::size_t pos_ = 0;
};

/// Maps a descr from a file onto the canonical one pnn stores; sets `swap` when the file's
/// elements are big-endian (NumPy on a big-endian machine writes ">f4"). False if unsupported.
inline bool npy_canonical_descr(std::string& descr, bool& swap) {
  swap = false;
  if (descr.size() < 2) return false;
  const char order = descr[0];
  if (order != '<' && order != '>' && order != '|') return false;
  const std::string_view kind = std::string_view(descr).substr(1);
  for (const auto& d : npy_dtypes) {
    if (d.descr.substr(1) != kind) continue;
    if (d.size == 1) {  // one byte has no byte order: accept "<u1" and ">u1" as "|u1"
      descr = std::string(d.descr);
      return true;
    }
    if (order == '|') return false;
    swap = order == '>';
    descr = std::string(d.descr);
    return true;
  }
  return false;
}

/// Parses the complete `.npy` image `bytes` (a file or an archive member) into an array, reusing
/// the buffer for the data. `where` starts every message.
inline npy_array parse_npy(std::vector<std::byte> bytes, const std::string& where) {
  const std::size_t size = bytes.size();
  if (size == 0) npy_fail(where + "empty, expected a .npy header");
  const std::size_t m = std::min<std::size_t>(size, npy_magic.size());
  for (std::size_t i = 0; i < m; ++i) {
    if (std::to_integer<unsigned char>(bytes[i]) != npy_magic[i]) {
      std::string got;
      for (std::size_t k = 0; k < m; ++k) got += (k != 0 ? " " : "") + npy_hex(std::to_integer<unsigned>(bytes[k]), 2);
      npy_fail(where + "wrong magic: a .npy file starts with 93 4e 55 4d 50 59 (\"\\x93NUMPY\"), this one with " + got);
    }
  }
  if (size < 10) {
    npy_fail(where + "truncated header: " + std::to_string(size) + " bytes, a .npy header needs at least 10");
  }
  const auto major = std::to_integer<unsigned>(bytes[6]);
  const auto minor = std::to_integer<unsigned>(bytes[7]);
  if ((major != 1 && major != 2) || minor != 0) {
    npy_fail(where + "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
             " (pnn reads 1.0 and 2.0)");
  }
  const std::size_t prefix = major == 1 ? 10 : 12;
  if (size < prefix) {
    npy_fail(where + "truncated header: " + std::to_string(size) + " bytes, a version 2.0 header needs at least 12");
  }
  const std::size_t header_len = major == 1 ? npy_get_le16(bytes.data() + 8) : npy_get_le32(bytes.data() + 8);
  if (size - prefix < header_len) {
    npy_fail(where + "truncated header: it announces " + std::to_string(header_len) + " bytes of header text, " +
             std::to_string(size - prefix) + " follow");
  }
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + prefix, header_len);

  std::string descr;
  bool fortran_order = false;
  std::vector<std::size_t> shape;
  npy_header_parser(text, where).parse(descr, fortran_order, shape);
  if (fortran_order) {
    npy_fail(where + "fortran_order is True: pnn reads C-order (row-major) arrays only; save "
                     "np.ascontiguousarray(a) instead");
  }
  bool swap = false;
  const std::string file_descr = descr;
  if (!npy_canonical_descr(descr, swap)) {
    npy_fail(where + "unsupported dtype '" + file_descr + "' (supported: " + std::string(npy_supported_dtypes) + ")");
  }
  const std::size_t item = npy_item_size(descr);
  std::size_t need = 0;
  if (!npy_shape_bytes(shape, item, need)) npy_fail(where + "shape " + npy_shape_text(shape) + " overflows size_t");
  const std::size_t offset = prefix + header_len;
  const std::size_t have = size - offset;
  if (have < need) {
    npy_fail(where + "truncated data: dtype '" + file_descr + "' and shape " + npy_shape_text(shape) + " need " +
             std::to_string(need) + " bytes, " + std::to_string(have) + " follow the header");
  }
  if (have > need) {
    npy_fail(where + std::to_string(have - need) + " trailing bytes after the " + std::to_string(need) +
             " bytes of data that dtype '" + file_descr + "' and shape " + npy_shape_text(shape) + " need");
  }
  // Shift the data to the front of the buffer we already own rather than allocating a second one.
  bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(offset));
  if (swap) npy_reverse_each(bytes.data(), need / item, item);
  return npy_array{std::move(descr), std::move(shape), std::move(bytes)};
}

/// A file read by offset; every read past its end is reported as truncation.
class npy_input_file {
 public:
  npy_input_file(const std::string& path, const std::string& where) : where_(where) {
    std::error_code ec;
    const auto st = std::filesystem::status(path, ec);
    if (!std::filesystem::exists(st)) npy_fail(where_ + "no such file");
    if (std::filesystem::is_directory(st)) npy_fail(where_ + "is a directory, not a file");
    file_.open(path, std::ios::binary);
    if (!file_) npy_fail(where_ + "cannot open for reading");
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) npy_fail(where_ + "cannot determine the size: " + ec.message());
    if (size > std::numeric_limits<std::size_t>::max()) npy_fail(where_ + "too large for this platform");
    size_ = static_cast<std::uint64_t>(size);
  }

  [[nodiscard]] std::uint64_t size() const noexcept { return size_; }

  /// The `n` bytes at `offset`; `what` names them in the message if the file is shorter.
  std::vector<std::byte> read(std::uint64_t offset, std::uint64_t n, const std::string& what) {
    if (offset > size_ || n > size_ - offset) {
      npy_fail(what + "truncated: needs bytes " + std::to_string(offset) + " to " + std::to_string(offset + n) +
               ", the file has " + std::to_string(size_));
    }
    std::vector<std::byte> out(static_cast<std::size_t>(n));
    file_.clear();
    file_.seekg(static_cast<std::streamoff>(offset));
    file_.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(n));
    if (!file_ || file_.gcount() != static_cast<std::streamsize>(n)) {
      npy_fail(what + "read error at offset " + std::to_string(offset) + " (the file changed while being read?)");
    }
    return out;
  }

 private:
  std::string where_;
  std::ifstream file_;
  std::uint64_t size_ = 0;
};

/// Writes a file through a temporary next to it and renames it over the target on `commit`. The
/// destructor removes the temporary when `commit` was not reached (an exception, a full disk),
/// so the target is either the old file or the complete new one, never a mix.
class atomic_output_file {
 public:
  atomic_output_file(const std::string& target, const std::string& where) : target_(target), where_(where) {
    // A name no other writer (thread or process) picks at the same moment: the clock, a
    // process-wide counter and this object's address (stacks differ between threads and, with
    // ASLR, between processes); exclusive creation below catches the rare collision anyway.
    static std::atomic<std::uint64_t> counter{0};
    const auto clock = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    const auto self = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(this));
    for (int attempt = 0; attempt < 16; ++attempt) {
      tmp_ = target + ".tmp-" + npy_hex(mix(clock ^ mix(self ^ mix(++counter))), 16);
      // "x": exclusive creation, so a stale or planted file (or symlink) of that name is never
      // written through.
      file_ = std::fopen(tmp_.c_str(), "wbx");
      if (file_ != nullptr) return;
      const int err = errno;
      if (err != EEXIST) npy_fail(where_ + "cannot create the temporary file '" + tmp_ + "': " + std::strerror(err));
    }
    tmp_.clear();
    npy_fail(where_ + "cannot create a temporary file next to it (names taken)");
  }

  atomic_output_file(const atomic_output_file&) = delete;
  atomic_output_file& operator=(const atomic_output_file&) = delete;

  ~atomic_output_file() {
    if (file_ != nullptr) std::fclose(file_);
    if (!committed_ && !tmp_.empty()) std::remove(tmp_.c_str());
  }

  void write(std::span<const std::byte> b) {
    if (b.empty()) return;
    if (std::fwrite(b.data(), 1, b.size(), file_) != b.size()) {
      const int err = errno;
      npy_fail(where_ + "write to '" + tmp_ + "' failed: " + std::strerror(err));
    }
  }

  void commit() {
    if (std::fflush(file_) != 0 || std::ferror(file_) != 0) {
      const int err = errno;
      npy_fail(where_ + "write to '" + tmp_ + "' failed: " + std::strerror(err));
    }
    std::FILE* f = file_;
    file_ = nullptr;
    if (std::fclose(f) != 0) {
      const int err = errno;
      npy_fail(where_ + "closing '" + tmp_ + "' failed: " + std::strerror(err));
    }
    // filesystem::rename replaces an existing target on every platform (std::rename does not on
    // Windows), and within one directory it is atomic on POSIX.
    std::error_code ec;
    std::filesystem::rename(tmp_, target_, ec);
    if (ec) npy_fail(where_ + "cannot rename the temporary file '" + tmp_ + "' over it: " + ec.message());
    committed_ = true;
  }

 private:
  /// splitmix64's finaliser: spreads every input bit over the whole name.
  static std::uint64_t mix(std::uint64_t z) noexcept {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
  }

  std::string target_;
  std::string tmp_;
  std::string where_;
  std::FILE* file_ = nullptr;
  bool committed_ = false;
};

// ZIP record signatures and the limits of archives without ZIP64.
inline constexpr std::uint32_t zip_local_signature = 0x04034b50u;
inline constexpr std::uint32_t zip_central_signature = 0x02014b50u;
inline constexpr std::uint32_t zip_end_signature = 0x06054b50u;
inline constexpr std::uint64_t zip32_limit = 0xFFFFFFFFu;  // this value itself means "see ZIP64"
inline constexpr std::size_t zip_local_size = 30;
inline constexpr std::size_t zip_central_size = 46;
inline constexpr std::size_t zip_end_size = 22;
// Every member is dated 1980-01-01 00:00 (the DOS epoch), so the same arrays always give the
// same archive, byte for byte: checksums and caches of exports stay valid.
inline constexpr std::uint16_t zip_dos_time = 0;
inline constexpr std::uint16_t zip_dos_date = (1u << 5) | 1u;
inline constexpr std::uint16_t zip_version = 20;  // 2.0: the first with "stored" + directories

}  // namespace detail

/// \brief Makes an `npy_array` from `product(shape)` contiguous row-major elements at `data`.
///
/// Copies the elements, converting them to little-endian on a big-endian host; an empty `shape`
/// is a 0-d array of one element.
/// \pre `data` points to `product(shape)` elements (it may be null when that product is 0).
/// \throws pnn::error when `data` is null for a non-empty shape or the byte count overflows.
template <npy_element T>
[[nodiscard]] npy_array make_npy(const T* data, std::vector<std::size_t> shape) {
  std::size_t bytes = 0;
  if (!detail::npy_shape_bytes(shape, sizeof(T), bytes)) {
    detail::npy_fail("pnn::io::make_npy: shape " + detail::npy_shape_text(shape) + " overflows size_t");
  }
  if (data == nullptr && bytes != 0) {
    detail::npy_fail("pnn::io::make_npy: null data for shape " + detail::npy_shape_text(shape));
  }
  npy_array a;
  a.dtype = std::string(npy_dtype<T>);
  a.shape = std::move(shape);
  a.data.resize(bytes);
  detail::npy_to_little(a.data.data(), data, bytes / sizeof(T));
  return a;
}

/// \brief Makes an `npy_array` from an xtensor expression (container, view or lazy function).
///
/// Evaluates the expression in row-major order whatever its own layout, so a column-major
/// tensor or a transposed view is stored as NumPy would see the same array.
/// \pre The expression's value type is an `npy_element` (checked at compile time).
template <class E>
[[nodiscard]] npy_array make_npy(const xt::xexpression<E>& expression) {
  const E& e = expression.derived_cast();
  using value = std::remove_cv_t<typename E::value_type>;
  static_assert(npy_element<value>,
                "pnn::io::make_npy: no NumPy dtype for this value type (float, double, uint8, uint32, uint64, "
                "int64 are supported)");
  std::vector<std::size_t> shape(e.shape().begin(), e.shape().end());
  if constexpr (std::is_base_of_v<xt::xcontainer<E>, E>) {
    // A row-major container's buffer already is the file's element order: one copy.
    if (e.layout() == xt::layout_type::row_major) return make_npy<value>(e.data(), std::move(shape));
  }
  npy_array a;
  a.dtype = std::string(npy_dtype<value>);
  a.shape = std::move(shape);
  a.data.resize(e.size() * sizeof(value));
  std::byte* dst = a.data.data();
  for (auto it = e.template cbegin<xt::layout_type::row_major>(); it != e.template cend<xt::layout_type::row_major>();
       ++it, dst += sizeof(value)) {
    const value v = *it;
    detail::npy_to_little(dst, &v, 1);
  }
  return a;
}

/// \brief The elements of `a` as a `std::vector<T>`.
///
/// Copies them in row-major order, converted from little-endian to the host's byte order.
/// \throws pnn::error when `a.dtype` is not `T`'s (no conversion happens: a float64 file read as
/// float would silently lose precision) or `a.data` does not match its dtype and shape.
template <npy_element T>
[[nodiscard]] std::vector<T> values(const npy_array& a) {
  const std::string where = "pnn::io::values: ";
  if (a.dtype != npy_dtype<T>) {
    detail::npy_fail(where + "the array's dtype is '" + a.dtype + "', the requested element type's is '" +
                     std::string(npy_dtype<T>) + "'");
  }
  const std::size_t bytes = detail::npy_checked_data_size(a, where);
  std::vector<T> out(bytes / sizeof(T));
  detail::npy_from_little(out.data(), a.data.data(), out.size());
  return out;
}

/// \brief The array `a` as an `xt::xtensor<T, N>` of the same shape.
///
/// Copies the elements, converted from little-endian to the host's byte order.
/// \throws pnn::error when `a.dtype` is not `T`'s, `a` does not have `N` dimensions, or
/// `a.data` does not match its dtype and shape.
template <npy_element T, std::size_t N>
[[nodiscard]] xt::xtensor<T, N> to_xtensor(const npy_array& a) {
  const std::string where = "pnn::io::to_xtensor: ";
  if (a.dtype != npy_dtype<T>) {
    detail::npy_fail(where + "the array's dtype is '" + a.dtype + "', the requested element type's is '" +
                     std::string(npy_dtype<T>) + "'");
  }
  if (a.shape.size() != N) {
    detail::npy_fail(where + "the array has shape " + detail::npy_shape_text(a.shape) + ", requested rank " +
                     std::to_string(N));
  }
  detail::npy_checked_data_size(a, where);
  std::array<std::size_t, N> s{};
  for (std::size_t i = 0; i < N; ++i) s[i] = a.shape[i];
  auto out = xt::xtensor<T, N>::from_shape(s);
  detail::npy_from_little(out.data(), a.data.data(), out.size());
  return out;
}

/// \brief Writes `a` to `path` as a `.npy` file (format 1.0, C order) that `np.load` reads.
///
/// The header is laid out and padded as recent `np.save` does it; the file appears complete or not at all
/// (written to a temporary next to `path`, then renamed over it).
/// \pre `a.dtype` is supported and `a.data` holds exactly the bytes of its dtype and shape.
/// \throws pnn::error naming `path` when the array is inconsistent or the file cannot be written;
/// any existing `path` is then left unchanged and no temporary remains.
inline void save_npy(const std::string& path, const npy_array& a) {
  const std::string where = "pnn::io::save_npy: '" + path + "': ";
  detail::npy_checked_data_size(a, where);
  const std::vector<std::byte> header = detail::npy_header(a);
  detail::atomic_output_file out(path, where);
  out.write(header);
  out.write(a.data);
  out.commit();
}

/// \brief Reads the `.npy` file at `path` (format 1.0 or 2.0).
///
/// Big-endian files (">f4") are converted, so the result is always little-endian as documented
/// for `npy_array`.
/// \throws pnn::error naming `path` and the defect when the file is missing or unreadable, the
/// magic is wrong, the version is not 1.0/2.0, the header is truncated or malformed, the array
/// is Fortran-ordered, the dtype is unsupported, or the data is truncated or followed by
/// trailing bytes.
[[nodiscard]] inline npy_array load_npy(const std::string& path) {
  const std::string where = "pnn::io::load_npy: '" + path + "': ";
  detail::npy_input_file in(path, where);
  return detail::parse_npy(in.read(0, in.size(), where), where);
}

/// \brief Writes `arrays` to `path` as an uncompressed `.npz` archive that `np.load` reads.
///
/// One stored `<name>.npy` member per array, in the given order; the archive appears complete or
/// not at all (temporary file, then rename).
/// \pre Names are non-empty and distinct; every array is consistent (see `save_npy`).
/// \throws pnn::error naming `path` (and the array) when a precondition fails, a member or the
/// archive would reach 4 GiB (that needs ZIP64, which pnn does not write: save such an array as
/// `.npy`), there are 65535 arrays or more, or the file cannot be written.
inline void save_npz(const std::string& path, const std::vector<std::pair<std::string, npy_array>>& arrays) {
  const std::string where = "pnn::io::save_npz: '" + path + "': ";
  if (arrays.size() >= 0xFFFF) {
    detail::npy_fail(where + std::to_string(arrays.size()) + " arrays: an archive without ZIP64 holds at most 65534");
  }
  struct member {
    std::string name;
    std::vector<std::byte> header;
    std::uint32_t crc;
    std::uint64_t size;
    std::uint64_t offset;
  };
  std::vector<member> members;
  members.reserve(arrays.size());
  std::set<std::string> seen;
  std::uint64_t offset = 0;
  for (const auto& [name, a] : arrays) {
    const std::string array_where = where + "array '" + name + "': ";
    if (name.empty()) detail::npy_fail(where + "an array has an empty name");
    if (!seen.insert(name).second) detail::npy_fail(array_where + "the name appears twice");
    member m{name + ".npy", {}, 0, 0, offset};
    if (m.name.size() > 0xFFFF) detail::npy_fail(array_where + "the name is longer than a ZIP member name can be");
    detail::npy_checked_data_size(a, array_where);
    m.header = detail::npy_header(a);
    m.size = m.header.size() + a.data.size();
    if (m.size >= detail::zip32_limit) {
      detail::npy_fail(array_where + "the member is " + std::to_string(m.size) +
                       " bytes; 4 GiB or more needs ZIP64, which pnn does not write (save it with save_npy)");
    }
    if (offset >= detail::zip32_limit) {
      detail::npy_fail(array_where + "the member would start at byte " + std::to_string(offset) +
                       "; an archive of 4 GiB or more needs ZIP64, which pnn does not write");
    }
    m.crc = pnn::crc32(a.data, pnn::crc32(m.header));
    offset += detail::zip_local_size + m.name.size() + m.size;
    members.push_back(std::move(m));
  }
  std::uint64_t directory_size = 0;
  for (const auto& m : members) directory_size += detail::zip_central_size + m.name.size();
  if (offset >= detail::zip32_limit || directory_size >= detail::zip32_limit) {
    detail::npy_fail(where + "the archive would reach 4 GiB; that needs ZIP64, which pnn does not write");
  }

  // Bit 11 declares the name UTF-8; without it readers decode non-ASCII names as code page 437.
  const auto flags_of = [](const std::string& name) -> std::uint16_t {
    const bool ascii =
        std::all_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
    return ascii ? std::uint16_t{0} : std::uint16_t{1u << 11};
  };
  // The fields shared by the local and the central header, from "version needed" to the name length.
  const auto common_fields = [&](std::vector<std::byte>& b, const member& m) {
    detail::npy_put_le(b, detail::zip_version, 2);
    detail::npy_put_le(b, flags_of(m.name), 2);
    detail::npy_put_le(b, 0, 2);  // method 0: stored
    detail::npy_put_le(b, detail::zip_dos_time, 2);
    detail::npy_put_le(b, detail::zip_dos_date, 2);
    detail::npy_put_le(b, m.crc, 4);
    detail::npy_put_le(b, m.size, 4);  // compressed size
    detail::npy_put_le(b, m.size, 4);  // uncompressed size
    detail::npy_put_le(b, m.name.size(), 2);
    detail::npy_put_le(b, 0, 2);  // extra field length
  };

  detail::atomic_output_file out(path, where);
  std::vector<std::byte> b;
  for (std::size_t i = 0; i < members.size(); ++i) {
    const member& m = members[i];
    b.clear();
    detail::npy_put_le(b, detail::zip_local_signature, 4);
    common_fields(b, m);
    for (const char c : m.name) b.push_back(static_cast<std::byte>(c));
    out.write(b);
    out.write(m.header);
    out.write(arrays[i].second.data);
  }
  b.clear();
  for (const member& m : members) {
    detail::npy_put_le(b, detail::zip_central_signature, 4);
    detail::npy_put_le(b, detail::zip_version, 2);  // made by: MS-DOS host (no Unix permissions to carry)
    common_fields(b, m);
    detail::npy_put_le(b, 0, 2);  // comment length
    detail::npy_put_le(b, 0, 2);  // disk number
    detail::npy_put_le(b, 0, 2);  // internal attributes
    detail::npy_put_le(b, 0, 4);  // external attributes
    detail::npy_put_le(b, m.offset, 4);
    for (const char c : m.name) b.push_back(static_cast<std::byte>(c));
  }
  detail::npy_put_le(b, detail::zip_end_signature, 4);
  detail::npy_put_le(b, 0, 2);  // this disk
  detail::npy_put_le(b, 0, 2);  // disk of the central directory
  detail::npy_put_le(b, members.size(), 2);
  detail::npy_put_le(b, members.size(), 2);
  detail::npy_put_le(b, directory_size, 4);
  detail::npy_put_le(b, offset, 4);
  detail::npy_put_le(b, 0, 2);  // comment length
  out.write(b);
  out.commit();
}

/// \brief Reads the `.npz` archive at `path`: its arrays and names, in the archive's order.
///
/// Each name is the member's less ".npy"; every member's CRC-32 is checked before it is parsed.
/// Sizes come from the central directory, so `np.savez` archives load although their local
/// headers carry ZIP64 fields (Python's zipfile writes ZIP64 records proper only past 2 GiB).
/// \throws pnn::error naming `path` (and the member) when the file is missing, is not a ZIP
/// archive or is truncated, uses ZIP64, encryption or several disks, has a compressed member
/// (written by `np.savez_compressed`), a member that is not `.npy` or appears twice, a CRC-32
/// mismatch, or a member `load_npy` would reject.
[[nodiscard]] inline std::vector<std::pair<std::string, npy_array>> load_npz(const std::string& path) {
  using detail::npy_get_le16;
  using detail::npy_get_le32;
  using detail::npy_fail;
  const std::string where = "pnn::io::load_npz: '" + path + "': ";
  detail::npy_input_file in(path, where);
  const std::uint64_t size = in.size();
  if (size < detail::zip_end_size) {
    npy_fail(where + "not a ZIP archive (" + std::to_string(size) +
             " bytes, too short for an end-of-central-directory record; truncated?)");
  }
  // The end record is the last 22 bytes unless the archive has a comment (up to 65535 bytes):
  // search backwards for a signature whose comment length reaches exactly the end of the file.
  const std::uint64_t tail_size = std::min<std::uint64_t>(size, detail::zip_end_size + 0xFFFF);
  const std::vector<std::byte> tail = in.read(size - tail_size, tail_size, where);
  std::size_t end_at = tail.size();
  for (std::size_t i = tail.size() - detail::zip_end_size + 1; i-- > 0;) {
    if (npy_get_le32(tail.data() + i) == detail::zip_end_signature &&
        i + detail::zip_end_size + npy_get_le16(tail.data() + i + 20) == tail.size()) {
      end_at = i;
      break;
    }
  }
  if (end_at == tail.size()) {
    if (std::to_integer<unsigned char>(tail[0]) == 0x93 && size == tail_size) {
      npy_fail(where + "not a ZIP archive: it looks like a .npy file (read it with load_npy)");
    }
    npy_fail(where + "not a ZIP archive (no end-of-central-directory record; truncated?)");
  }
  const std::byte* end = tail.data() + end_at;
  const std::uint16_t entries = npy_get_le16(end + 10);
  const std::uint32_t directory_size = npy_get_le32(end + 12);
  const std::uint32_t directory_offset = npy_get_le32(end + 16);
  if (npy_get_le16(end + 4) != 0 || npy_get_le16(end + 6) != 0 || npy_get_le16(end + 8) != entries) {
    npy_fail(where + "multi-disk (split) ZIP archives are not supported");
  }
  if (entries == 0xFFFF || directory_size == detail::zip32_limit || directory_offset == detail::zip32_limit) {
    npy_fail(where + "a ZIP64 archive; pnn reads archives without ZIP64 (under 4 GiB)");
  }
  const std::uint64_t end_offset = size - tail_size + end_at;
  if (std::uint64_t{directory_offset} + directory_size > end_offset) {
    npy_fail(where + "the central directory (" + std::to_string(directory_size) + " bytes at " +
             std::to_string(directory_offset) + ") overlaps the end record at " + std::to_string(end_offset) +
             ": truncated or corrupt");
  }
  const std::vector<std::byte> dir = in.read(directory_offset, directory_size, where);

  std::vector<std::pair<std::string, npy_array>> result;
  result.reserve(entries);
  std::set<std::string> seen;
  std::size_t pos = 0;
  for (std::size_t k = 0; k < entries; ++k) {
    if (dir.size() - pos < detail::zip_central_size ||
        npy_get_le32(dir.data() + pos) != detail::zip_central_signature) {
      npy_fail(where + "corrupt central directory: entry " + std::to_string(k) + " of " + std::to_string(entries) +
               " is missing or malformed");
    }
    const std::byte* e = dir.data() + pos;
    const std::uint16_t flags = npy_get_le16(e + 8);
    const std::uint16_t method = npy_get_le16(e + 10);
    const std::uint32_t crc = npy_get_le32(e + 16);
    const std::uint32_t compressed = npy_get_le32(e + 20);
    const std::uint32_t uncompressed = npy_get_le32(e + 24);
    const std::size_t name_len = npy_get_le16(e + 28);
    const std::size_t entry_len = detail::zip_central_size + name_len + npy_get_le16(e + 30) + npy_get_le16(e + 32);
    const std::uint32_t local_offset = npy_get_le32(e + 42);
    if (dir.size() - pos < entry_len) {
      npy_fail(where + "corrupt central directory: entry " + std::to_string(k) + " runs past its end");
    }
    const std::string name(reinterpret_cast<const char*>(e + detail::zip_central_size), name_len);
    pos += entry_len;

    const std::string member_where = where + "member '" + name + "': ";
    if ((flags & 1u) != 0) npy_fail(member_where + "encrypted members are not supported");
    if (method != 0) {
      npy_fail(member_where + "compressed (ZIP method " + std::to_string(method) +
               "); pnn reads stored (uncompressed) members only: write it with np.savez, not np.savez_compressed");
    }
    if (compressed == detail::zip32_limit || uncompressed == detail::zip32_limit ||
        local_offset == detail::zip32_limit) {
      npy_fail(member_where + "has ZIP64 sizes; pnn reads archives without ZIP64 (under 4 GiB)");
    }
    if (compressed != uncompressed) {
      npy_fail(member_where + "stored, yet its compressed size " + std::to_string(compressed) +
               " differs from its size " + std::to_string(uncompressed));
    }
    constexpr std::string_view suffix = ".npy";
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      npy_fail(member_where + "not a .npy member (an .npz holds only <name>.npy files)");
    }
    std::string key = name.substr(0, name.size() - suffix.size());
    if (!seen.insert(key).second) npy_fail(member_where + "appears twice in the archive");

    const std::vector<std::byte> local = in.read(local_offset, detail::zip_local_size, member_where);
    if (npy_get_le32(local.data()) != detail::zip_local_signature) {
      npy_fail(member_where + "no local file header at offset " + std::to_string(local_offset) + ": corrupt archive");
    }
    const std::size_t local_name_len = npy_get_le16(local.data() + 26);
    const std::uint64_t data_offset =
        std::uint64_t{local_offset} + detail::zip_local_size + local_name_len + npy_get_le16(local.data() + 28);
    if (local_name_len != name_len ||
        in.read(std::uint64_t{local_offset} + detail::zip_local_size, local_name_len, member_where) !=
            std::vector<std::byte>(e + detail::zip_central_size, e + detail::zip_central_size + name_len)) {
      npy_fail(member_where + "the local file header names another member: corrupt archive");
    }
    std::vector<std::byte> bytes = in.read(data_offset, compressed, member_where);
    const std::uint32_t actual = pnn::crc32(bytes);
    if (actual != crc) {
      npy_fail(member_where + "CRC-32 mismatch (the archive records " + detail::npy_hex(crc, 8) + ", the data has " +
               detail::npy_hex(actual, 8) + "): the member is corrupt");
    }
    result.emplace_back(std::move(key), detail::parse_npy(std::move(bytes), member_where));
  }
  return result;
}

}  // namespace pnn::io
