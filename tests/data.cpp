// SPDX-License-Identifier: MIT
// pnn/data: the IDX reader (round trips over every element type, plain and gzipped, and every
// malformed-file error), Fashion-MNIST, the dataset helpers, and the synthetic tasks.
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/data/dataset.hpp>
#include <pnn/data/fashion_mnist.hpp>
#include <pnn/data/idx.hpp>
#include <pnn/data/synthetic.hpp>

#if defined(PNN_HAS_ZLIB) && PNN_HAS_ZLIB
#include <zlib.h>
#endif

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_data {

namespace {

namespace fs = std::filesystem;
namespace pd = pnn::data;
using Catch::Matchers::Contains;
using bytes = std::vector<unsigned char>;

/// A fresh directory under the system temp dir, removed with everything in it at scope exit.
struct temp_dir {
  fs::path path;
  temp_dir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("pnn_data_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  fs::path operator/(const std::string& name) const { return path / name; }
};

void write_file(const fs::path& p, const bytes& b) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  REQUIRE(f.good());
}

void put_be(bytes& out, std::uint64_t v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<unsigned char>(v >> (8 * (n - 1 - i))));
}

/// An IDX header: 00 00 type rank, then the big-endian extents.
bytes idx_header(unsigned char type, const std::vector<std::uint32_t>& dims) {
  bytes b{0, 0, type, static_cast<unsigned char>(dims.size())};
  for (const std::uint32_t d : dims) put_be(b, d, 4);
  return b;
}

/// A whole IDX file holding `values` (converted to the element type of `type`).
bytes idx_file(pd::idx_type type, const std::vector<std::uint32_t>& dims, const std::vector<double>& values) {
  bytes b = idx_header(static_cast<unsigned char>(type), dims);
  for (const double v : values) {
    switch (type) {
      case pd::idx_type::u8: put_be(b, static_cast<std::uint8_t>(v), 1); break;
      case pd::idx_type::i8: put_be(b, static_cast<std::uint8_t>(static_cast<std::int8_t>(v)), 1); break;
      case pd::idx_type::i16: put_be(b, static_cast<std::uint16_t>(static_cast<std::int16_t>(v)), 2); break;
      case pd::idx_type::i32: put_be(b, static_cast<std::uint32_t>(static_cast<std::int32_t>(v)), 4); break;
      case pd::idx_type::f32: put_be(b, std::bit_cast<std::uint32_t>(static_cast<float>(v)), 4); break;
      case pd::idx_type::f64: put_be(b, std::bit_cast<std::uint64_t>(v), 8); break;
    }
  }
  return b;
}

#if defined(PNN_HAS_ZLIB) && PNN_HAS_ZLIB
/// `raw` as one gzip member (zlib's deflate with the gzip wrapper).
bytes gzip(const bytes& raw) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  bytes out(deflateBound(&z, static_cast<uLong>(raw.size())) + 64);
  z.next_in = const_cast<unsigned char*>(raw.data());
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}
#endif

/// Checks that loading `p` throws `pnn::error` naming the file and containing `what`.
void check_idx_error(const fs::path& p, const std::string& what) {
  CAPTURE(p.string(), what);
  CHECK_THROWS_AS(pd::load_idx(p), pnn::error);
  CHECK_THROWS_WITH(pd::load_idx(p), Contains(p.string()) && Contains(what));
}

const std::vector<double> sample_values(pd::idx_type t) {
  switch (t) {
    case pd::idx_type::u8: return {0, 1, 127, 128, 254, 255};
    case pd::idx_type::i8: return {-128, -1, 0, 1, 100, 127};
    case pd::idx_type::i16: return {-32768, -300, 0, 1, 258, 32767};
    case pd::idx_type::i32: return {-2147483648.0, -70000, 0, 1, 16909060, 2147483647};
    case pd::idx_type::f32: return {-1.5, 0.0, 0.25, 3.0e10, -7.125, 1.0e-20};
    case pd::idx_type::f64: return {-1.5, 0.0, 0.1, 1.0e300, -7.125e-300, 3.141592653589793};
  }
  return {};
}

constexpr pd::idx_type all_types[] = {pd::idx_type::u8,  pd::idx_type::i8,  pd::idx_type::i16,
                                      pd::idx_type::i32, pd::idx_type::f32, pd::idx_type::f64};

}  // namespace

TEST_CASE("load_idx round-trips every element type and rank", "[data][idx]") {
  temp_dir dir;
  for (const pd::idx_type t : all_types) {
    const std::vector<double> v = sample_values(t);
    CAPTURE(pd::idx_type_name(t));
    const fs::path p = dir / "a.idx";
    write_file(p, idx_file(t, {2, 3}, v));
    const pd::idx_array a = pd::load_idx(p);
    CHECK(a.type == t);
    CHECK(a.shape == std::vector<std::size_t>{2, 3});
    CHECK(a.rank() == 2);
    CHECK(a.size() == 6);
    const std::vector<double> back = a.to_vector<double>();
    for (std::size_t i = 0; i < v.size(); ++i) {
      // float storage rounds the doubles we wrote; everything else is exact.
      CHECK(back[i] == (t == pd::idx_type::f32 ? static_cast<double>(static_cast<float>(v[i])) : v[i]));
    }
    const auto x = a.to_xtensor<double, 2>();
    CHECK(x.shape()[0] == 2);
    CHECK(x.shape()[1] == 3);
    CHECK(x(1, 2) == back[5]);
    const auto xa = a.to_xarray<double>();
    CHECK(xa.dimension() == 2);
    CHECK(xa(1, 0) == back[3]);
  }

  const fs::path p = dir / "rank3.idx";
  write_file(p, idx_file(pd::idx_type::u8, {2, 2, 3}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
  const pd::idx_array a = pd::load_idx(p);
  const auto x = a.to_xtensor<std::uint8_t, 3>();
  CHECK(x(1, 0, 2) == 8);
  const auto m = a.to_matrix<float>();
  CHECK(m.shape()[0] == 2);
  CHECK(m.shape()[1] == 6);
  CHECK(m(1, 5) == 11.0f);

  // A zero extent is an empty array, not an error.
  write_file(p, idx_file(pd::idx_type::f32, {0, 5}, {}));
  CHECK(pd::load_idx(p).size() == 0);
}

TEST_CASE("idx_array conversions refuse what they cannot represent", "[data][idx]") {
  temp_dir dir;
  const fs::path p = dir / "ints.idx";
  write_file(p, idx_file(pd::idx_type::i32, {3}, {1, 300, -2}));
  const pd::idx_array a = pd::load_idx(p);
  CHECK_THROWS_WITH(a.to_vector<std::uint8_t>(), Contains(p.string()) && Contains("300"));
  CHECK_THROWS_WITH((a.to_xtensor<float, 2>()), Contains(p.string()) && Contains("rank 2"));
  CHECK(a.to_vector<std::int16_t>() == std::vector<std::int16_t>{1, 300, -2});

  write_file(p, idx_file(pd::idx_type::f64, {2}, {1.0, 2.5}));
  CHECK_THROWS_AS(pd::load_idx(p).to_vector<std::int32_t>(), pnn::error);
}

#if defined(PNN_HAS_ZLIB) && PNN_HAS_ZLIB
TEST_CASE("load_idx reads gzip by content, not by name", "[data][idx]") {
  temp_dir dir;
  const std::vector<double> v = sample_values(pd::idx_type::i16);
  const bytes raw = idx_file(pd::idx_type::i16, {3, 2}, v);

  const fs::path gz_named_plain = dir / "compressed.idx";
  write_file(gz_named_plain, gzip(raw));
  CHECK(pd::load_idx(gz_named_plain).to_vector<double>() == v);

  const fs::path plain_named_gz = dir / "plain.idx.gz";
  write_file(plain_named_gz, raw);
  CHECK(pd::load_idx(plain_named_gz).to_vector<double>() == v);

  // gzip allows concatenated members; split the file mid-header and mid-data.
  for (const std::size_t cut : {std::size_t{2}, std::size_t{13}}) {
    bytes two = gzip(bytes(raw.begin(), raw.begin() + static_cast<std::ptrdiff_t>(cut)));
    const bytes rest = gzip(bytes(raw.begin() + static_cast<std::ptrdiff_t>(cut), raw.end()));
    two.insert(two.end(), rest.begin(), rest.end());
    const fs::path p = dir / "members.gz";
    write_file(p, two);
    CHECK(pd::load_idx(p).to_vector<double>() == v);
  }

  // The first items only: the rest of the stream is not inflated, and its trailing bytes are
  // not looked at.
  bytes trailing = raw;
  trailing.push_back(0x42);
  const fs::path head = dir / "head.gz";
  write_file(head, gzip(trailing));
  CHECK_THROWS_WITH(pd::load_idx(head), Contains("trailing bytes"));
  const pd::idx_array first = pd::load_idx(head, 2);
  CHECK(first.shape == std::vector<std::size_t>{2, 2});
  CHECK(first.to_vector<double>() == std::vector<double>(v.begin(), v.begin() + 4));
  CHECK(pd::load_idx(head, 0).shape == std::vector<std::size_t>{0, 2});
  CHECK_THROWS_WITH(pd::load_idx(head, 3), Contains("trailing bytes"));  // 3 items is the whole file

  // Larger than one inflate buffer, to cross chunk boundaries.
  std::vector<double> big(300000);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<double>((i * 7919) % 251);
  const fs::path p = dir / "big.gz";
  write_file(p, gzip(idx_file(pd::idx_type::u8, {300, 1000}, big)));
  const pd::idx_array a = pd::load_idx(p);
  CHECK(a.shape == std::vector<std::size_t>{300, 1000});
  CHECK(a.to_vector<double>() == big);
}
#endif

TEST_CASE("load_idx reports every malformed file by name", "[data][idx][errors]") {
  temp_dir dir;
  const bytes good = idx_file(pd::idx_type::u8, {2, 3}, {1, 2, 3, 4, 5, 6});

  check_idx_error(dir / "does-not-exist.idx", "no such file");
  check_idx_error(dir.path, "directory");

  const fs::path p = dir / "bad.idx";
  write_file(p, {});
  check_idx_error(p, "empty");

  write_file(p, bytes{0, 0, 8});
  check_idx_error(p, "truncated header");

  bytes wrong = good;
  wrong[0] = 0x50;
  wrong[1] = 0x4b;
  write_file(p, wrong);
  check_idx_error(p, "wrong magic");

  bytes type = good;
  type[2] = 0x0A;
  write_file(p, type);
  check_idx_error(p, "unsupported IDX type code 0x0a");

  write_file(p, bytes{0, 0, 8, 0});
  check_idx_error(p, "zero dimensions");

  write_file(p, bytes{0, 0, 8, 3, 0, 0, 0, 2, 0, 0});
  check_idx_error(p, "truncated header");

  write_file(p, bytes(good.begin(), good.end() - 1));
  check_idx_error(p, "truncated data");

  bytes trailing = good;
  trailing.push_back(0);
  write_file(p, trailing);
  check_idx_error(p, "trailing bytes");

  // 65536³ overflows 32 bits and 2³¹; 2¹⁶ · 2¹⁶ = 2³² merely exceeds the limit. Neither may
  // allocate before failing.
  write_file(p, idx_header(0x08, {65536, 65536, 65536}));
  check_idx_error(p, "absurd dimensions");
  write_file(p, idx_header(0x0E, {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}));
  check_idx_error(p, "absurd dimensions");
  write_file(p, idx_header(0x08, {65536, 65536}));
  check_idx_error(p, "absurd dimensions");

  // Just under the limit but with no data: must report truncation without a 16 GB allocation.
  write_file(p, idx_header(0x0E, {32768, 65536}));
  check_idx_error(p, "truncated data");

#if defined(PNN_HAS_ZLIB) && PNN_HAS_ZLIB
  const fs::path g = dir / "bad.idx.gz";
  write_file(g, gzip(bytes(good.begin(), good.end() - 1)));
  check_idx_error(g, "truncated data");

  write_file(g, gzip(trailing));
  check_idx_error(g, "trailing bytes");

  write_file(g, gzip(wrong));
  check_idx_error(g, "wrong magic");

  const bytes z = gzip(good);
  write_file(g, bytes(z.begin(), z.end() - 6));
  check_idx_error(g, "gzip stream is truncated");

  bytes corrupt = z;
  corrupt[z.size() - 5] ^= 0xFF;  // inside the ISIZE/CRC trailer
  write_file(g, corrupt);
  check_idx_error(g, "corrupt gzip stream");

  bytes junk_after = z;
  junk_after.push_back(0x00);
  junk_after.push_back(0x42);
  write_file(g, junk_after);
  check_idx_error(g, "trailing bytes after the end of the gzip stream");
#else
  const fs::path g = dir / "any.gz";
  write_file(g, bytes{0x1f, 0x8b, 8, 0, 0, 0, 0, 0});
  check_idx_error(g, "without zlib");
#endif
}

// The reader parses untrusted files: thousands of mutations of valid files (bit flips, byte
// overwrites, truncations, insertions, spliced headers), plain and gzipped, must each either
// load into a self-consistent array or fail with a pnn::error naming the file — never crash,
// hang, throw anything else or allocate what the file cannot hold (run under the sanitize
// preset, ASan and UBSan check the last).
TEST_CASE("load_idx survives thousands of mutated files", "[data][idx][errors][fuzz]") {
  temp_dir dir;
  pnn::rng g(0x1d7f);
  auto below = [&](std::size_t n) { return static_cast<std::size_t>(g.uniform_double() * double(n)) % n; };
  std::vector<bytes> seeds;
  for (const auto t : all_types) {
    const auto v = sample_values(t);
    seeds.push_back(idx_file(t, {2, 3}, v));
    seeds.push_back(idx_file(t, {6}, v));
    seeds.push_back(idx_file(t, {1, 2, 3}, v));
  }
  const fs::path p = dir / "fuzz.idx";
  std::size_t loaded = 0, refused = 0;
  for (int round = 0; round < 3000; ++round) {
    bytes b = seeds[below(seeds.size())];
    const int edits = 1 + static_cast<int>(below(4));
    for (int e = 0; e < edits && !b.empty(); ++e) {
      switch (below(5)) {
        case 0: b[below(b.size())] ^= static_cast<unsigned char>(1u << below(8)); break;    // flip a bit
        case 1: b[below(b.size())] = static_cast<unsigned char>(below(256)); break;         // overwrite a byte
        case 2: b.resize(below(b.size() + 1)); break;                                        // truncate
        case 3: b.insert(b.begin() + std::ptrdiff_t(below(b.size() + 1)), static_cast<unsigned char>(below(256))); break;
        default: {  // a header from another seed on this body
          const bytes& o = seeds[below(seeds.size())];
          std::copy(o.begin(), o.begin() + std::ptrdiff_t(std::min<std::size_t>(4 + 4 * below(4), std::min(o.size(), b.size()))), b.begin());
        }
      }
    }
#if defined(PNN_HAS_ZLIB) && PNN_HAS_ZLIB
    // A quarter go through gzip, mutated after compression half of the time.
    if (round % 4 == 0) {
      b = gzip(b);
      if (round % 8 == 0 && !b.empty()) b[below(b.size())] ^= static_cast<unsigned char>(1u << below(8));
    }
#endif
    write_file(p, b);
    try {
      const pd::idx_array a = pd::load_idx(p);
      std::size_t count = 1;
      for (const std::size_t d : a.shape) count *= d;
      CHECK(a.size() == count);
      CHECK(a.rank() >= 1);
      CHECK(pd::idx_element_size(a.type) != 0);
      ++loaded;
    } catch (const pnn::error& e) {
      const std::string what = e.what();
      if (what.find(p.string()) == std::string::npos) FAIL("error does not name the file: " << what);
      ++refused;
    }
  }
  // Both outcomes occur: the mutations reach past the header checks.
  CHECK(loaded > 30);
  CHECK(refused > 1000);
}

TEST_CASE("one_hot, subset and take", "[data]") {
  const xt::xtensor<std::int32_t, 1> labels = {2, 0, 1};
  const auto t = pd::one_hot(labels, 3);
  CHECK((t == xt::xtensor<float, 2>{{0, 0, 1}, {1, 0, 0}, {0, 1, 0}}));
  CHECK_THROWS_WITH(pd::one_hot(labels, 2), Contains("label 2"));

  pd::dataset d;
  d.inputs = {{1, 2}, {3, 4}, {5, 6}};
  d.targets = t;
  d.labels = labels;
  d.name = "tiny";
  const pd::dataset s = pd::subset(d, 1, 2);
  CHECK(s.size() == 2);
  CHECK((s.inputs == xt::xtensor<float, 2>{{3, 4}, {5, 6}}));
  CHECK((s.targets == xt::xtensor<float, 2>{{1, 0, 0}, {0, 1, 0}}));
  CHECK((s.labels == xt::xtensor<std::int32_t, 1>{0, 1}));
  CHECK(s.name == "tiny");
  CHECK(pd::subset(d, 3, 0).size() == 0);
  CHECK_THROWS_WITH(pd::subset(d, 2, 2), Contains("out of range") && Contains("tiny"));
  CHECK((pd::take(d, 2).inputs == xt::xtensor<float, 2>{{1, 2}, {3, 4}}));
  CHECK(pd::take(d, 100).size() == 3);

  d.labels = xt::xtensor<std::int32_t, 1>::from_shape({0});  // regression: no labels
  CHECK(pd::subset(d, 0, 1).labels.size() == 0);
}

TEST_CASE("from_idx and the MNIST layout check their files", "[data][mnist]") {
  temp_dir dir;
  const auto images = [](std::uint32_t n, std::uint32_t h, std::uint32_t w) {
    std::vector<double> v(std::size_t{n} * h * w);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i % 256);
    return idx_file(pd::idx_type::u8, {n, h, w}, v);
  };
  write_file(dir / "train-images-idx3-ubyte", images(4, 28, 28));
  write_file(dir / "train-labels-idx1-ubyte", idx_file(pd::idx_type::u8, {4}, {0, 9, 3, 3}));
#if defined(PNN_HAS_ZLIB) && PNN_HAS_ZLIB
  write_file(dir / "t10k-images-idx3-ubyte.gz", gzip(images(2, 28, 28)));
  write_file(dir / "t10k-labels-idx1-ubyte.gz", gzip(idx_file(pd::idx_type::u8, {2}, {1, 2})));
#else
  write_file(dir / "t10k-images-idx3-ubyte", images(2, 28, 28));
  write_file(dir / "t10k-labels-idx1-ubyte", idx_file(pd::idx_type::u8, {2}, {1, 2}));
#endif

  SECTION("a well-formed directory, mixed plain and gzipped") {
    const pd::split s = pd::fashion_mnist(dir.path);
    CHECK(s.train.size() == 4);
    CHECK(s.test.size() == 2);
    CHECK(s.train.features() == 784);
    CHECK(s.train.outputs() == 10);
    CHECK(s.train.name == "fashion-mnist");
    CHECK(s.train.inputs(0, 255) == 1.0f);
    CHECK(s.train.inputs(0, 1) == Approx(1.0 / 255.0));
    CHECK((s.train.labels == xt::xtensor<std::int32_t, 1>{0, 9, 3, 3}));
    CHECK(s.train.targets(1, 9) == 1.0f);
    CHECK(pd::mnist(dir.path).test.name == "mnist");
  }
  SECTION("the first training samples only: the same rows, the rest unread") {
    const pd::split all = pd::fashion_mnist(dir.path);
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{4}, std::size_t{100}}) {
      const pd::split part = pd::fashion_mnist(dir.path, n);
      const pd::dataset expect = pd::take(all.train, n);
      INFO(n << " samples");
      CHECK(part.train.size() == expect.size());
      CHECK(part.train.inputs == expect.inputs);
      CHECK(part.train.labels == expect.labels);
      CHECK(part.test.size() == 2);
    }
    // A file cut after its third image: the first three load, all four do not.
    const bytes whole = images(4, 28, 28);
    write_file(dir / "train-images-idx3-ubyte", bytes(whole.begin(), whole.end() - 784 + 10));
    CHECK(pd::fashion_mnist(dir.path, 3).train.size() == 3);
    CHECK_THROWS_WITH(pd::fashion_mnist(dir.path, 4), Contains("train-images-idx3-ubyte") && Contains("truncated"));
    CHECK_THROWS_WITH(pd::fashion_mnist(dir.path), Contains("truncated"));
  }
  SECTION("image and label counts differ") {
    write_file(dir / "train-labels-idx1-ubyte", idx_file(pd::idx_type::u8, {3}, {0, 1, 2}));
    CHECK_THROWS_WITH(pd::fashion_mnist(dir.path),
                      Contains("train-labels-idx1-ubyte") && Contains("4 images") && Contains("3 labels"));
  }
  SECTION("a label outside 0..9") {
    write_file(dir / "train-labels-idx1-ubyte", idx_file(pd::idx_type::u8, {4}, {0, 1, 10, 2}));
    CHECK_THROWS_WITH(pd::fashion_mnist(dir.path),
                      Contains("train-labels-idx1-ubyte") && Contains("label 10") && Contains("0..9"));
  }
  SECTION("images that are not 28 x 28") {
    write_file(dir / "train-images-idx3-ubyte", images(4, 27, 29));
    CHECK_THROWS_WITH(pd::fashion_mnist(dir.path),
                      Contains("train-images-idx3-ubyte") && Contains("4 x 27 x 29") && Contains("28 x 28"));
  }
  SECTION("a missing file") {
    fs::remove(dir / "t10k-labels-idx1-ubyte.gz");
    fs::remove(dir / "t10k-labels-idx1-ubyte");
    CHECK_THROWS_WITH(pd::fashion_mnist(dir.path), Contains("t10k-labels-idx1-ubyte") && Contains("no such file"));
  }
  SECTION("from_idx checks what fashion_mnist does not") {
    write_file(dir / "float-labels", idx_file(pd::idx_type::f32, {4}, {0, 1, 2, 3}));
    CHECK_THROWS_WITH(pd::from_idx(dir / "train-images-idx3-ubyte", dir / "float-labels", 10),
                      Contains("float-labels") && Contains("integers"));
    CHECK_THROWS_WITH(pd::from_idx(dir / "train-labels-idx1-ubyte", dir / "train-labels-idx1-ubyte", 10),
                      Contains("train-labels-idx1-ubyte") && Contains("at least 2"));
    const pd::dataset d = pd::from_idx(dir / "train-images-idx3-ubyte", dir / "train-labels-idx1-ubyte", 12, "x");
    CHECK(d.outputs() == 12);
    CHECK(d.name == "x");
  }
}

TEST_CASE("fashion_mnist names a missing directory and how to get it", "[data][mnist]") {
  const fs::path missing = fs::temp_directory_path() / "pnn-no-such-fashion-mnist-dir";
  CHECK_THROWS_AS(pd::fashion_mnist(missing), pnn::error);
  CHECK_THROWS_WITH(pd::fashion_mnist(missing),
                    Contains(missing.string()) && Contains("apt-get install dataset-fashion-mnist"));
}

TEST_CASE("default_dir honours PNN_DATA_DIR", "[data][mnist]") {
  const char* old = std::getenv("PNN_DATA_DIR");
  const std::string saved = old != nullptr ? old : "";
  ::setenv("PNN_DATA_DIR", "/somewhere/else", 1);
  CHECK(pd::default_dir() == fs::path("/somewhere/else"));
  ::unsetenv("PNN_DATA_DIR");
  CHECK(pd::default_dir() == fs::path("/usr/share/datasets/fashion-mnist"));
  if (old != nullptr) ::setenv("PNN_DATA_DIR", saved.c_str(), 1);
}

TEST_CASE("Fashion-MNIST loads with the published sizes and class balance", "[data][mnist][fashion]") {
  const fs::path dir = pd::default_dir();
  if (!fs::is_directory(dir)) {
    WARN("Fashion-MNIST not found in " << dir << " (apt-get install dataset-fashion-mnist); skipped");
    return;
  }
#if !(defined(PNN_HAS_ZLIB) && PNN_HAS_ZLIB)
  if (!fs::exists(dir / "train-images-idx3-ubyte")) {
    WARN("Fashion-MNIST in " << dir << " is gzip-compressed and this build has no zlib; skipped");
    return;
  }
#endif
  const pd::split s = pd::fashion_mnist(dir);
  REQUIRE(s.train.size() == 60000);
  REQUIRE(s.test.size() == 10000);
  for (const pd::dataset* d : {&s.train, &s.test}) {
    CHECK(d->name == "fashion-mnist");
    CHECK(d->features() == 784);
    CHECK(d->outputs() == 10);
    CHECK(d->labels.size() == d->size());
    const auto [lo, hi] = std::minmax_element(d->inputs.begin(), d->inputs.end());
    CHECK(*lo == 0.0f);
    CHECK(*hi == 1.0f);
    std::vector<std::size_t> histogram(10, 0);
    bool one_hot_ok = true;
    for (std::size_t i = 0; i < d->size(); ++i) {
      const auto c = static_cast<std::size_t>(d->labels(i));
      ++histogram.at(c);
      float row_sum = 0.0f;
      for (std::size_t k = 0; k < 10; ++k) row_sum += d->targets(i, k);
      one_hot_ok = one_hot_ok && d->targets(i, c) == 1.0f && row_sum == 1.0f;
    }
    CHECK(one_hot_ok);
    CHECK(histogram == std::vector<std::size_t>(10, d->size() / 10));
  }
  // The first training image is an ankle boot (class 9) in the published files.
  CHECK(s.train.labels(0) == 9);
}

namespace {

/// Checks the invariants every classification set shares: shapes, labels in range, one-hot
/// targets matching the labels, finite inputs.
void check_classification(const pd::dataset& d, std::size_t n, std::size_t features, std::size_t classes) {
  REQUIRE(d.size() == n);
  REQUIRE(d.features() == features);
  REQUIRE(d.outputs() == classes);
  REQUIRE(d.labels.size() == n);
  bool ok = true;
  for (std::size_t i = 0; i < n; ++i) {
    const std::int32_t c = d.labels(i);
    ok = ok && c >= 0 && static_cast<std::size_t>(c) < classes;
    if (!ok) break;
    for (std::size_t k = 0; k < classes; ++k) {
      ok = ok && d.targets(i, k) == (k == static_cast<std::size_t>(c) ? 1.0f : 0.0f);
    }
    for (std::size_t j = 0; j < features; ++j) ok = ok && std::isfinite(d.inputs(i, j));
  }
  CHECK(ok);
}

std::vector<std::size_t> class_counts(const pd::dataset& d) {
  std::vector<std::size_t> counts(d.outputs(), 0);
  for (std::size_t i = 0; i < d.size(); ++i) ++counts[static_cast<std::size_t>(d.labels(i))];
  return counts;
}

}  // namespace

TEST_CASE("synthetic tasks have the right shapes and consistent labels", "[data][synthetic]") {
  pnn::rng g(7);
  const pd::dataset x = pd::xor_task(400, g);
  check_classification(x, 400, 2, 2);
  CHECK(x.name == "xor");
  CHECK(class_counts(x) == std::vector<std::size_t>{200, 200});
  bool xor_ok = true;
  for (std::size_t i = 0; i < x.size(); ++i) {
    // With noise 0.1 a point never leaves its quadrant by 10 sigma.
    const bool differ = (x.inputs(i, 0) > 0) != (x.inputs(i, 1) > 0);
    xor_ok = xor_ok && (x.labels(i) == 1) == differ;
  }
  CHECK(xor_ok);
  const pd::dataset clean = pd::xor_task(4, g, 0.0f);
  CHECK((clean.inputs == xt::xtensor<float, 2>{{-1, -1}, {1, -1}, {-1, 1}, {1, 1}}));
  CHECK((clean.labels == xt::xtensor<std::int32_t, 1>{0, 1, 1, 0}));

  const pd::dataset m = pd::two_moons(301, g);
  check_classification(m, 301, 2, 2);
  CHECK(m.name == "two-moons");
  const pd::dataset flat = pd::two_moons(200, g, 0.0f);
  bool on_moons = true;
  for (std::size_t i = 0; i < flat.size(); ++i) {
    // Undo the centring shift; each point lies on its unit half circle.
    const double cx = flat.labels(i) == 0 ? 0.0 : 1.0;
    const double cy = flat.labels(i) == 0 ? 0.0 : 0.5;
    const double dx = flat.inputs(i, 0) + 0.5 - cx;
    const double dy = flat.inputs(i, 1) + 0.25 - cy;
    on_moons = on_moons && std::abs(std::hypot(dx, dy) - 1.0) < 1e-5;
  }
  CHECK(on_moons);

  const pd::dataset sp = pd::spirals(300, g, 3, 2.0f, 0.0f);
  check_classification(sp, 300, 2, 3);
  CHECK(sp.name == "spirals");
  CHECK(class_counts(sp) == std::vector<std::size_t>{100, 100, 100});
  CHECK((xt::amax(xt::abs(sp.inputs))() <= 1.0f));

  const pd::dataset b = pd::gaussian_blobs(500, 5, 4, g, 0.1f);
  check_classification(b, 500, 5, 4);
  CHECK(b.name == "gaussian-blobs");
  CHECK(class_counts(b) == std::vector<std::size_t>(4, 125));

  const pd::dataset ts = pd::teacher_student(50, 6, 3, g, 8, 0.01f);
  CHECK(ts.size() == 50);
  CHECK(ts.features() == 6);
  CHECK(ts.outputs() == 3);
  CHECK(ts.labels.size() == 0);
  CHECK(ts.name == "teacher-student");
  CHECK(xt::all(xt::isfinite(ts.targets)));

  CHECK_THROWS_WITH(pd::xor_task(4, g, -1.0f), Contains("xor_task") && Contains("noise"));
  CHECK_THROWS_AS(pd::spirals(4, g, 0), pnn::error);
  CHECK_THROWS_AS(pd::gaussian_blobs(4, 0, 2, g), pnn::error);
  CHECK_THROWS_AS(pd::teacher_student(4, 3, 0, g), pnn::error);
  CHECK_THROWS_AS(pd::two_moons(4, g, std::nanf("")), pnn::error);
}

TEST_CASE("synthetic tasks are reproducible from the generator", "[data][synthetic]") {
  const auto all = [](pnn::rng g) {
    std::vector<pd::dataset> v;
    v.push_back(pd::xor_task(64, g));
    v.push_back(pd::two_moons(64, g));
    v.push_back(pd::spirals(64, g, 3));
    v.push_back(pd::gaussian_blobs(64, 3, 4, g));
    v.push_back(pd::teacher_student(64, 4, 2, g, 5, 0.1f));
    return v;
  };
  const auto a = all(pnn::rng(42));
  const auto b = all(pnn::rng(42));
  const auto c = all(pnn::rng(43));
  for (std::size_t i = 0; i < a.size(); ++i) {
    CAPTURE(a[i].name);
    CHECK((a[i].inputs == b[i].inputs));
    CHECK((a[i].targets == b[i].targets));
    CHECK((a[i].labels == b[i].labels));
    CHECK((a[i].inputs != c[i].inputs));
  }

  // Successive calls with one generator draw new samples of the same task.
  pnn::rng g(5);
  const pd::dataset train = pd::teacher_student(3, 1, 1, g, 0, 0.0f);
  const pd::dataset test = pd::teacher_student(3, 1, 1, g, 0, 0.0f);
  CHECK((train.inputs != test.inputs));
  // A linear teacher y = w x + b: two training points fix it, and the test points obey it.
  const double w = static_cast<double>(train.targets(1, 0) - train.targets(0, 0)) /
                   static_cast<double>(train.inputs(1, 0) - train.inputs(0, 0));
  const double bias = train.targets(0, 0) - w * train.inputs(0, 0);
  for (std::size_t i = 0; i < 3; ++i) CHECK(test.targets(i, 0) == Approx(w * test.inputs(i, 0) + bias).margin(1e-5));

  pnn::rng h(9);
  const pd::dataset b1 = pd::gaussian_blobs(400, 2, 2, h, 0.05f);
  const pd::dataset b2 = pd::gaussian_blobs(400, 2, 2, h, 0.05f);
  CHECK((b1.inputs != b2.inputs));
  for (std::size_t k = 0; k < 2; ++k) {
    for (std::size_t j = 0; j < 2; ++j) {
      double m1 = 0, m2 = 0;
      for (std::size_t i = k; i < 400; i += 2) {
        m1 += b1.inputs(i, j);
        m2 += b2.inputs(i, j);
      }
      CHECK(m1 / 200 == Approx(m2 / 200).margin(0.02));
    }
  }
}

}  // namespace tests_data
