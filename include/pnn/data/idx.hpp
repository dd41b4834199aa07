// SPDX-License-Identifier: MIT
/// \file
/// \brief `pnn::data::load_idx`: the IDX array format of (Fashion-)MNIST, plain or gzip-compressed.
///
/// IDX (LeCun & Cortes, "The MNIST database"): two zero bytes, a type code, the number of
/// dimensions, one big-endian uint32 per dimension, then the elements in row-major order,
/// big-endian. A file starting with the gzip magic 1f 8b is inflated on the fly when pnn is built
/// with zlib (`PNN_HAS_ZLIB`, set by CMake when zlib is found); the name does not matter.
///
/// Every defect (missing file, wrong magic, unknown type, truncated data, trailing bytes, absurd
/// dimensions, corrupt gzip stream) is a `pnn::error` whose message names the file and the
/// defect; nothing is returned partially.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xtensor.hpp>

#include <pnn/core/error.hpp>

#if defined(PNN_HAS_ZLIB) && PNN_HAS_ZLIB
#include <zlib.h>
#endif

namespace pnn::data {

/// \brief The element type of an IDX file, by its type code (third byte of the magic).
enum class idx_type : std::uint8_t {
  u8 = 0x08,   ///< unsigned byte
  i8 = 0x09,   ///< signed byte
  i16 = 0x0B,  ///< big-endian 16-bit signed integer
  i32 = 0x0C,  ///< big-endian 32-bit signed integer
  f32 = 0x0D,  ///< big-endian IEEE 754 single
  f64 = 0x0E,  ///< big-endian IEEE 754 double
};

/// \brief Size in bytes of one element of type `t`.
constexpr std::size_t idx_element_size(idx_type t) noexcept {
  switch (t) {
    case idx_type::u8:
    case idx_type::i8: return 1;
    case idx_type::i16: return 2;
    case idx_type::i32:
    case idx_type::f32: return 4;
    case idx_type::f64: return 8;
  }
  return 0;
}

/// \brief The name of type `t` as the IDX documentation spells it ("unsigned byte", ...).
constexpr const char* idx_type_name(idx_type t) noexcept {
  switch (t) {
    case idx_type::u8: return "unsigned byte";
    case idx_type::i8: return "signed byte";
    case idx_type::i16: return "short";
    case idx_type::i32: return "int";
    case idx_type::f32: return "float";
    case idx_type::f64: return "double";
  }
  return "unknown";
}

/// Most elements `load_idx` accepts (2³¹): far above any IDX data set, low enough that a corrupt
/// header cannot make us allocate gigabytes before the data turns out to be missing.
inline constexpr std::size_t idx_max_elements = std::size_t{1} << 31;

namespace detail {

/// Reports a data error: throws `pnn::error`, or goes through the violation handler and traps
/// when exceptions are off (a data file is never silently half-loaded).
[[noreturn]] inline void fail(const std::string& what) {
#if PNN_HAS_EXCEPTIONS
  ::pnn::throw_error(what);
#else
  if (::pnn::detail::g_violation_handler != nullptr) ::pnn::detail::g_violation_handler(what.c_str(), "", 0);
  ::pnn::detail::trap();
#endif
}

/// `value` converted to `To`; an integer target must hold the value exactly, because silently
/// wrapping a label or a count would corrupt a data set without a trace.
template <class To, class From>
To checked_element_cast(From value, const std::string& context) {
  if constexpr (std::is_floating_point_v<To>) {
    return static_cast<To>(value);
  } else if constexpr (std::is_floating_point_v<From>) {
    const auto lo = static_cast<From>(std::numeric_limits<To>::min());
    const auto hi = static_cast<From>(std::numeric_limits<To>::max());
    if (!(value >= lo && value <= hi) || std::trunc(value) != value) {
      fail(context + ": value " + std::to_string(value) + " is not representable as the requested integer type");
    }
    return static_cast<To>(value);
  } else {
    if (!std::in_range<To>(value)) {
      fail(context + ": value " + std::to_string(value) + " is out of range of the requested integer type");
    }
    return static_cast<To>(value);
  }
}

}  // namespace detail

/// \brief An array read from an IDX file: its shape, its element type and its elements in their
/// stored type (row-major, host byte order).
///
/// Storage keeps the file's type so that a 47 MB byte image set stays 47 MB; the accessors
/// convert on the way out.
struct idx_array {
  /// The elements in their stored type; the alternative in use matches `type`.
  using storage = std::variant<std::vector<std::uint8_t>, std::vector<std::int8_t>, std::vector<std::int16_t>,
                               std::vector<std::int32_t>, std::vector<float>, std::vector<double>>;

  std::vector<std::size_t> shape{};  ///< extents, outermost first (IDX order)
  idx_type type = idx_type::u8;      ///< element type code of the file
  storage values{};                  ///< the elements, row-major
  std::string source{};              ///< the file it was read from (for messages)

  /// \brief Number of dimensions.
  [[nodiscard]] std::size_t rank() const noexcept { return shape.size(); }

  /// \brief Number of elements (product of `shape`).
  [[nodiscard]] std::size_t size() const noexcept {
    return std::visit([](const auto& v) { return v.size(); }, values);
  }

  /// \brief The elements converted to `T`, row-major.
  /// \pre For an integer `T`, every element is representable in `T` (else `pnn::error`).
  template <class T>
  [[nodiscard]] std::vector<T> to_vector() const {
    std::vector<T> out(size());
    convert_into(out.data());
    return out;
  }

  /// \brief The array as an `xt::xtensor<T, N>` of the same shape.
  /// \pre `rank() == N`; for an integer `T`, every element is representable in `T`.
  template <class T, std::size_t N>
  [[nodiscard]] xt::xtensor<T, N> to_xtensor() const {
    if (rank() != N) {
      detail::fail("pnn::data::idx_array: '" + source + "' has " + std::to_string(rank()) +
                   " dimensions, requested an xtensor of rank " + std::to_string(N));
    }
    std::array<std::size_t, N> s{};
    for (std::size_t i = 0; i < N; ++i) s[i] = shape[i];
    auto out = xt::xtensor<T, N>::from_shape(s);
    convert_into(out.data());
    return out;
  }

  /// \brief The array as an `xt::xarray<T>` of the same shape (any rank).
  /// \pre For an integer `T`, every element is representable in `T`.
  template <class T>
  [[nodiscard]] xt::xarray<T> to_xarray() const {
    auto out = xt::xarray<T>::from_shape(shape);
    convert_into(out.data());
    return out;
  }

  /// \brief The array as a matrix: `shape[0]` rows, the remaining extents flattened into columns
  /// (n images of 28 × 28 become n × 784).
  /// \pre `rank() >= 1`; for an integer `T`, every element is representable in `T`.
  template <class T>
  [[nodiscard]] xt::xtensor<T, 2> to_matrix() const {
    const std::size_t rows = rank() == 0 ? 0 : shape[0];
    std::size_t cols = 1;
    for (std::size_t i = 1; i < rank(); ++i) cols *= shape[i];
    auto out = xt::xtensor<T, 2>::from_shape({rows, cols});
    convert_into(out.data());
    return out;
  }

 private:
  template <class T>
  void convert_into(T* dst) const {
    std::visit(
        [&](const auto& v) {
          using from = typename std::decay_t<decltype(v)>::value_type;
          if constexpr (std::is_same_v<from, T>) {
            if (!v.empty()) std::memcpy(dst, v.data(), v.size() * sizeof(T));
          } else {
            const std::string context = "pnn::data::idx_array: '" + source + "'";
            for (std::size_t i = 0; i < v.size(); ++i) dst[i] = detail::checked_element_cast<T>(v[i], context);
          }
        },
        values);
  }
};

namespace detail {

/// A sequential byte reader over a file, inflating it when it is gzip-compressed.
class idx_reader {
 public:
  explicit idx_reader(const std::filesystem::path& path) : path_(path) {
    std::error_code ec;
    const auto st = std::filesystem::status(path, ec);
    if (!std::filesystem::exists(st)) fail(prefix() + "no such file");
    if (std::filesystem::is_directory(st)) fail(prefix() + "is a directory, not an IDX file");
    file_.reset(std::fopen(path.c_str(), "rb"));
    if (!file_) fail(prefix() + "cannot open: " + std::strerror(errno));
    // Sniff the content, not the name: a .gz renamed to .idx (or the reverse) still loads.
    std::array<unsigned char, 2> head{};
    const std::size_t got = std::fread(head.data(), 1, head.size(), file_.get());
    check_io();
    gzip_ = got == 2 && head[0] == 0x1f && head[1] == 0x8b;
    if (std::fseek(file_.get(), 0, SEEK_SET) != 0) fail(prefix() + "cannot seek: " + std::strerror(errno));
#if defined(PNN_HAS_ZLIB) && PNN_HAS_ZLIB
    if (gzip_) {
      z_ = std::make_unique<z_stream>();
      // 16 + MAX_WBITS: gzip wrapper only; we sniffed the magic, and the CRC gets checked.
      if (inflateInit2(z_.get(), 16 + MAX_WBITS) != Z_OK) {
        z_.reset();
        fail(prefix() + "cannot initialise zlib");
      }
      in_.resize(std::size_t{1} << 16);
    }
#else
    if (gzip_) {
      fail(prefix() + "is gzip-compressed, but pnn was built without zlib (define PNN_HAS_ZLIB=1 and link "
                      "zlib, or decompress the file with gunzip)");
    }
#endif
  }

  idx_reader(const idx_reader&) = delete;
  idx_reader& operator=(const idx_reader&) = delete;
  ~idx_reader() {
#if defined(PNN_HAS_ZLIB) && PNN_HAS_ZLIB
    if (z_) inflateEnd(z_.get());
#endif
  }

  /// "pnn::data::load_idx: '<file>': ", the start of every message about this file.
  [[nodiscard]] std::string prefix() const { return "pnn::data::load_idx: '" + path_.string() + "': "; }

  /// Reads up to `n` bytes; fewer only at the end of the (decompressed) data.
  std::size_t read(unsigned char* dst, std::size_t n) {
    if (!gzip_) {
      const std::size_t got = std::fread(dst, 1, n, file_.get());
      check_io();
      return got;
    }
    return inflate_into(dst, n);
  }

 private:
  struct file_closer {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
  };

  void check_io() {
    if (std::ferror(file_.get()) != 0) fail(prefix() + "read error: " + std::strerror(errno));
  }

#if defined(PNN_HAS_ZLIB) && PNN_HAS_ZLIB
  /// Refills the compressed input; false at the end of the file.
  bool refill() {
    const std::size_t got = std::fread(in_.data(), 1, in_.size(), file_.get());
    check_io();
    z_->next_in = in_.data();
    z_->avail_in = static_cast<uInt>(got);
    return got != 0;
  }

  std::size_t inflate_into(unsigned char* dst, std::size_t n) {
    std::size_t done = 0;
    while (done < n && !finished_) {
      if (z_->avail_in == 0 && !refill()) {
        fail(prefix() + "gzip stream is truncated (the compressed file ends before the stream does)");
      }
      // inflate counts in uInt; feed large requests in chunks.
      const std::size_t chunk = std::min<std::size_t>(n - done, std::numeric_limits<uInt>::max());
      z_->next_out = dst + done;
      z_->avail_out = static_cast<uInt>(chunk);
      const int ret = inflate(z_.get(), Z_NO_FLUSH);
      done += chunk - z_->avail_out;
      if (ret == Z_STREAM_END) {
        next_member();
      } else if (ret != Z_OK && ret != Z_BUF_ERROR) {
        fail(prefix() + "corrupt gzip stream (" + (z_->msg != nullptr ? z_->msg : zError(ret)) + ")");
      }
    }
    return done;
  }

  /// After the end of a gzip member: a following member is part of the data (gzip allows
  /// concatenation); anything else after the stream is garbage.
  void next_member() {
    if (z_->avail_in == 0 && !refill()) {
      finished_ = true;
      return;
    }
    if (z_->avail_in < 2 && z_->next_in[0] == 0x1f) {
      // The next member's magic straddles our buffer: keep the byte we have, then refill.
      in_[0] = z_->next_in[0];
      const std::size_t got = std::fread(in_.data() + 1, 1, in_.size() - 1, file_.get());
      check_io();
      z_->next_in = in_.data();
      z_->avail_in = static_cast<uInt>(got + 1);
    }
    if (z_->avail_in >= 2 && z_->next_in[0] == 0x1f && z_->next_in[1] == 0x8b) {
      inflateReset(z_.get());
      return;
    }
    fail(prefix() + "trailing bytes after the end of the gzip stream");
  }

  std::unique_ptr<z_stream> z_{};
  std::vector<unsigned char> in_{};
#else
  std::size_t inflate_into(unsigned char*, std::size_t) { return 0; }
#endif

  std::filesystem::path path_;
  std::unique_ptr<std::FILE, file_closer> file_{};
  bool gzip_ = false;
  bool finished_ = false;
};

/// The big-endian unsigned integer in the first `sizeof(U)` bytes of `p`.
template <std::unsigned_integral U>
constexpr U load_big_endian(const unsigned char* p) noexcept {
  U v = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i) v = static_cast<U>((v << 8) | p[i]);
  return v;
}

/// Reads `count` elements of type `T` (big-endian in the file) from `r`, or fails.
template <class T>
std::vector<T> read_elements(idx_reader& r, std::size_t count) {
  // Grow with the data actually read rather than trusting the header for one big allocation: a
  // truncated file announcing 2³¹ doubles must fail fast, not allocate 16 GB first. Reads start
  // at 4096 elements and double up to 16 MB, so memory follows what the file really holds
  // (found by fuzzing: a 20-byte file used to reserve 256 MB).
  constexpr std::size_t chunk = (std::size_t{16} << 20) / sizeof(T);
  std::vector<T> out;
  std::size_t have = 0;
  std::size_t step = 4096;
  while (have < count) {
    const std::size_t want = std::min({step, chunk, count - have});
    step *= 2;
    out.resize(have + want);
    const std::size_t bytes = want * sizeof(T);
    const std::size_t got = r.read(reinterpret_cast<unsigned char*>(out.data() + have), bytes);
    if (got != bytes) {
      fail(r.prefix() + "truncated data: the header announces " + std::to_string(count) + " elements (" +
           std::to_string(count * sizeof(T)) + " bytes), the file holds " +
           std::to_string(have * sizeof(T) + got) + " bytes");
    }
    have += want;
  }
  if constexpr (sizeof(T) > 1 && std::endian::native == std::endian::little) {
    using bits = std::conditional_t<sizeof(T) == 2, std::uint16_t,
                                    std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>;
    const auto* raw = reinterpret_cast<const unsigned char*>(out.data());
    for (std::size_t i = 0; i < count; ++i) {
      const bits b = load_big_endian<bits>(raw + i * sizeof(T));
      std::memcpy(&out[i], &b, sizeof(T));
    }
  }
  return out;
}

}  // namespace detail

/// \brief Reads the IDX file at `path`, plain or gzip-compressed (detected by content).
///
/// \throws pnn::error naming the file when it is missing or unreadable, the magic is wrong, the
/// type code is unknown, it has zero dimensions, the dimensions announce more than
/// `idx_max_elements` elements, the data is shorter than announced or followed by trailing
/// bytes, or (compressed) the gzip stream is corrupt or truncated, or pnn lacks zlib.
///
/// With `max_items`, only the first `max_items` items along the first dimension are read (the
/// array's `shape[0]` says how many): the rest of the file is neither decompressed nor checked,
/// which is what makes a quick run on part of a large file quick. The header is checked as
/// always, and a file shorter than the items asked for is still an error.
[[nodiscard]] inline idx_array load_idx(const std::filesystem::path& path,
                                        std::size_t max_items = static_cast<std::size_t>(-1)) {
  detail::idx_reader r(path);

  std::array<unsigned char, 4> magic{};
  const std::size_t got = r.read(magic.data(), magic.size());
  if (got == 0) detail::fail(r.prefix() + "file is empty, expected an IDX header");
  if (got < magic.size()) detail::fail(r.prefix() + "truncated header (" + std::to_string(got) + " bytes)");
  if (magic[0] != 0 || magic[1] != 0) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "%02x %02x", magic[0], magic[1]);
    detail::fail(r.prefix() + "wrong magic: an IDX file starts with 00 00, this one with " + hex);
  }
  const auto type = static_cast<idx_type>(magic[2]);
  if (idx_element_size(type) == 0) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", magic[2]);
    detail::fail(r.prefix() + "unsupported IDX type code " + hex +
                 " (expected 0x08, 0x09, 0x0b, 0x0c, 0x0d or 0x0e)");
  }
  const std::size_t rank = magic[3];
  if (rank == 0) detail::fail(r.prefix() + "zero dimensions in the IDX header");

  std::vector<unsigned char> dims_raw(rank * 4);
  if (r.read(dims_raw.data(), dims_raw.size()) != dims_raw.size()) {
    detail::fail(r.prefix() + "truncated header: " + std::to_string(rank) + " dimensions announced, not all present");
  }
  idx_array a;
  a.type = type;
  a.source = path.string();
  a.shape.resize(rank);
  std::uint64_t count = 1;
  for (std::size_t i = 0; i < rank; ++i) {
    a.shape[i] = detail::load_big_endian<std::uint32_t>(dims_raw.data() + 4 * i);
    // Checking each partial product keeps the test overflow-free (extents are < 2³², the
    // running product ≤ 2³¹ before the multiplication, so it fits in 64 bits).
    count *= a.shape[i];
    if (count > idx_max_elements) {
      std::string dims;
      for (std::size_t j = 0; j < rank; ++j) {
        dims += (j == 0 ? "" : " x ") + std::to_string(detail::load_big_endian<std::uint32_t>(dims_raw.data() + 4 * j));
      }
      detail::fail(r.prefix() + "absurd dimensions " + dims + ": more than " + std::to_string(idx_max_elements) +
                   " elements");
    }
  }

  const bool partial = max_items < a.shape[0];
  if (partial) {
    // shape[0] > max_items ≥ 0, and count ≤ idx_max_elements: the quotient is exact.
    const std::size_t item = static_cast<std::size_t>(count) / a.shape[0];
    a.shape[0] = max_items;
    count = std::uint64_t(max_items) * item;
  }
  const auto n = static_cast<std::size_t>(count);
  switch (type) {
    case idx_type::u8: a.values = detail::read_elements<std::uint8_t>(r, n); break;
    case idx_type::i8: a.values = detail::read_elements<std::int8_t>(r, n); break;
    case idx_type::i16: a.values = detail::read_elements<std::int16_t>(r, n); break;
    case idx_type::i32: a.values = detail::read_elements<std::int32_t>(r, n); break;
    case idx_type::f32: a.values = detail::read_elements<float>(r, n); break;
    case idx_type::f64: a.values = detail::read_elements<double>(r, n); break;
  }

  unsigned char extra = 0;
  if (!partial && r.read(&extra, 1) != 0) detail::fail(r.prefix() + "trailing bytes after the data the header announces");
  return a;
}

}  // namespace pnn::data
