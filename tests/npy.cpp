// SPDX-License-Identifier: MIT
// pnn/io/npy: .npy and .npz round trips over every exported element type and ranks 0-3, the
// header byte for byte against the NumPy format description, a hand-built known answer, the
// archive against Python's zipfile (when python3 is present), hand-built files from other
// writers, every malformed-file error, and atomic writes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include <xtensor/xmanipulation.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

#include <pnn/core/crc32.hpp>
#include <pnn/core/error.hpp>
#include <pnn/io/npy.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_npy {

namespace {

namespace fs = std::filesystem;
namespace io = pnn::io;
using Catch::Matchers::Contains;
using bytes = std::vector<unsigned char>;

/// A fresh directory under the system temp dir, removed with everything in it at scope exit.
struct temp_dir {
  fs::path path;
  temp_dir() {
    static int counter = 0;
    path = fs::temp_directory_path() / ("pnn_npy_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

bytes read_file(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  REQUIRE(f.good());
  return bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_file(const std::string& p, const bytes& b) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  REQUIRE(f.good());
}

void append(bytes& out, const std::string& s) { out.insert(out.end(), s.begin(), s.end()); }

void put_le(bytes& out, std::uint64_t v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}

std::uint64_t get_le(const bytes& b, std::size_t at, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = n; i-- > 0;) v = (v << 8) | b[at + i];
  return v;
}

/// A version 1.0 .npy image with header `dict` padded to `align` bytes, followed by `data`:
/// built from the format description, independently of the library's writer.
bytes npy_image(const std::string& dict, const bytes& data, std::size_t align = 64, unsigned char major = 1,
                unsigned char minor = 0) {
  bytes b{0x93, 'N', 'U', 'M', 'P', 'Y', major, minor};
  std::string h = dict;
  while ((10 + h.size() + 1) % align != 0) h += ' ';
  h += '\n';
  put_le(b, h.size(), 2);
  append(b, h);
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

/// The message of the `pnn::error` that `f` throws (the test fails when it throws nothing).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const pnn::error& e) {
    return e.what();
  }
  FAIL("no pnn::error thrown");
  return {};
}

template <class T>
std::vector<T> sample_values(std::size_t n) {
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    if constexpr (std::is_floating_point_v<T>) {
      v[i] = static_cast<T>(static_cast<double>(i) * 0.37 - 5.25);
    } else {
      v[i] = static_cast<T>(i * 2654435761u + 17u);
    }
  }
  // The extremes of each type, where bit patterns matter most.
  if constexpr (std::is_floating_point_v<T>) {
    const T special[] = {T(-0.0), std::numeric_limits<T>::infinity(), -std::numeric_limits<T>::infinity(),
                         std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::denorm_min(),
                         std::numeric_limits<T>::max(), std::numeric_limits<T>::lowest()};
    for (std::size_t i = 0; i < n && i < std::size(special); ++i) v[i] = special[i];
  } else {
    if (n > 0) v[0] = std::numeric_limits<T>::max();
    if (n > 1) v[1] = std::numeric_limits<T>::min();
  }
  return v;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

const std::vector<std::vector<std::size_t>> round_trip_shapes{{7}, {3, 4}, {2, 3, 5}, {0}, {4, 0, 2}, {}};

}  // namespace

TEMPLATE_TEST_CASE("npy: float, double, uint8, uint32, uint64, int64 round-trip bit for bit through .npy and .npz",
                   "[io][npy]", float, double, std::uint8_t, std::uint32_t, std::uint64_t, std::int64_t) {
  temp_dir dir;
  std::vector<std::pair<std::string, io::npy_array>> members;
  std::vector<std::vector<TestType>> originals;
  for (const auto& shape : round_trip_shapes) {
    std::size_t n = 1;
    for (const auto d : shape) n *= d;
    const auto v = sample_values<TestType>(n);
    const io::npy_array a = io::make_npy(v.data(), shape);
    CHECK(a.dtype == io::npy_dtype<TestType>);
    CHECK(a.data.size() == n * sizeof(TestType));

    const std::string file = dir / ("a" + std::to_string(members.size()) + ".npy");
    io::save_npy(file, a);
    const io::npy_array b = io::load_npy(file);
    CHECK(b.dtype == a.dtype);
    CHECK(b.shape == shape);
    CHECK(b.data == a.data);
    CHECK(same_bits(io::values<TestType>(b), v));

    members.emplace_back("arr_" + std::to_string(members.size()), a);
    originals.push_back(v);
  }
  const std::string npz = dir / "all.npz";
  io::save_npz(npz, members);
  const auto loaded = io::load_npz(npz);
  REQUIRE(loaded.size() == members.size());
  for (std::size_t i = 0; i < loaded.size(); ++i) {
    CHECK(loaded[i].first == members[i].first);
    CHECK(loaded[i].second.dtype == members[i].second.dtype);
    CHECK(loaded[i].second.shape == members[i].second.shape);
    CHECK(loaded[i].second.data == members[i].second.data);
    CHECK(same_bits(io::values<TestType>(loaded[i].second), originals[i]));
  }
  // Nothing but the files written: every temporary was renamed away.
  CHECK(static_cast<std::size_t>(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator())) ==
        round_trip_shapes.size() + 1);
}

TEST_CASE("npy: xtensor expressions in, xtensors out, in row-major order whatever the layout", "[io][npy]") {
  xt::xtensor<double, 3> t = xt::zeros<double>({2, 3, 4});
  for (std::size_t i = 0; i < t.size(); ++i) t.flat(i) = static_cast<double>(i) * 1.5 - 3.0;

  const io::npy_array a = io::make_npy(t);
  CHECK(a.shape == std::vector<std::size_t>{2, 3, 4});
  const auto back = io::to_xtensor<double, 3>(a);
  CHECK(back == t);

  // A column-major container, a transposed view and a lazy function: each stored row-major.
  xt::xtensor<float, 2, xt::layout_type::column_major> cm({2, 3});
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t j = 0; j < 3; ++j) cm(i, j) = static_cast<float>(10 * i + j);
  CHECK(io::values<float>(io::make_npy(cm)) == std::vector<float>{0, 1, 2, 10, 11, 12});

  xt::xtensor<std::uint32_t, 2> m{{1, 2, 3}, {4, 5, 6}};
  const io::npy_array tr = io::make_npy(xt::transpose(m));
  CHECK(tr.shape == std::vector<std::size_t>{3, 2});
  CHECK(io::values<std::uint32_t>(tr) == std::vector<std::uint32_t>{1, 4, 2, 5, 3, 6});
  const io::npy_array col = io::make_npy(xt::view(m, xt::all(), 1));
  CHECK(io::values<std::uint32_t>(col) == std::vector<std::uint32_t>{2, 5});
  xt::xtensor<double, 1> x{1.0, 2.0};
  CHECK(io::values<double>(io::make_npy(x * 2.0 + 1.0)) == std::vector<double>{3.0, 5.0});

  // A 0-d tensor is shape ().
  xt::xtensor<std::int64_t, 0> s = -42;
  const io::npy_array sa = io::make_npy(s);
  CHECK(sa.shape.empty());
  CHECK(io::to_xtensor<std::int64_t, 0>(sa)() == -42);

  // Asking for another type or rank is an error, never a silent conversion.
  CHECK_THAT(error_of([&] { (void)io::values<float>(a); }), Contains("'<f8'") && Contains("'<f4'"));
  CHECK_THAT(error_of([&] { (void)io::to_xtensor<double, 2>(a); }), Contains("(2, 3, 4)") && Contains("rank 2"));
  io::npy_array bad = a;
  bad.data.pop_back();
  CHECK_THAT(error_of([&] { (void)io::values<double>(bad); }), Contains("191 bytes"));
}

TEST_CASE("npy: the header is NumPy's layout, data aligned to 64 bytes", "[io][npy]") {
  temp_dir dir;
  const struct {
    std::vector<std::size_t> shape;
    std::string shape_text;
  } cases[] = {{{3, 4}, "(3, 4)"}, {{5}, "(5,)"}, {{}, "()"}, {{0}, "(0,)"}, {{2, 1, 6}, "(2, 1, 6)"}};
  for (const auto& c : cases) {
    std::size_t n = 1;
    for (const auto d : c.shape) n *= d;
    const std::vector<float> v(n, 0.5f);
    const std::string file = dir / "h.npy";
    io::save_npy(file, io::make_npy(v.data(), c.shape));
    const bytes b = read_file(file);
    INFO("shape " << c.shape_text);

    REQUIRE(b.size() >= 10);
    CHECK(bytes(b.begin(), b.begin() + 8) == bytes{0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0});
    const std::size_t header_len = get_le(b, 8, 2);
    const std::size_t offset = 10 + header_len;
    CHECK(offset % 64 == 0);
    REQUIRE(b.size() == offset + n * sizeof(float));
    const std::string header(b.begin() + 10, b.begin() + static_cast<std::ptrdiff_t>(offset));
    const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': " + c.shape_text + ", }";
    CHECK(header.substr(0, dict.size()) == dict);
    CHECK(header.back() == '\n');
    CHECK(header.find_first_not_of(' ', dict.size()) == header.size() - 1);
  }

  // A header past 65535 bytes (tens of thousands of dimensions) needs version 2.0 and its 4-byte
  // length, as NumPy writes it.
  const std::vector<std::size_t> many(30000, 1);
  const float one = 1.0f;
  const std::string file = dir / "v2.npy";
  io::save_npy(file, io::make_npy(&one, many));
  const bytes b = read_file(file);
  CHECK(bytes(b.begin(), b.begin() + 8) == bytes{0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0});
  CHECK((12 + get_le(b, 8, 4)) % 64 == 0);
  const io::npy_array back = io::load_npy(file);
  CHECK(back.shape == many);
  CHECK(io::values<float>(back) == std::vector<float>{1.0f});
}

TEST_CASE("npy: known answer, float32 [1, 2] built by hand from the format description", "[io][npy]") {
  temp_dir dir;
  // Magic, version 1.0, header length 118 = 0x0076 (10 + 118 = 128, a multiple of 64), the dict,
  // spaces up to the final newline, then 1.0f = 0x3f800000 and 2.0f = 0x40000000 little-endian.
  bytes expected{0x93, 'N', 'U', 'M', 'P', 'Y', 0x01, 0x00, 0x76, 0x00};
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  append(expected, dict);
  expected.insert(expected.end(), 118 - dict.size() - 1, ' ');
  expected.push_back('\n');
  for (const unsigned char c : bytes{0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40}) expected.push_back(c);
  REQUIRE(expected.size() == 136);

  const float v[] = {1.0f, 2.0f};
  const std::string file = dir / "kat.npy";
  io::save_npy(file, io::make_npy(v, {2}));
  CHECK(read_file(file) == expected);
  // And the hand-built image loads back.
  write_file(file, expected);
  CHECK(io::values<float>(io::load_npy(file)) == std::vector<float>{1.0f, 2.0f});
}

TEST_CASE("npz: a stored ZIP whose members are the .npy files save_npy writes", "[io][npy]") {
  temp_dir dir;
  const std::vector<double> w{1.0, -2.0, 3.5, 0.25, 8.0, -0.0};
  const std::vector<std::uint8_t> labels{3, 1, 4, 1, 5};
  const io::npy_array wa = io::make_npy(w.data(), {2, 3});
  const io::npy_array la = io::make_npy(labels.data(), {5});
  io::save_npy(dir / "w.npy", wa);
  io::save_npy(dir / "labels.npy", la);
  const std::string npz = dir / "model.npz";
  io::save_npz(npz, {{"w", wa}, {"labels", la}});

  const bytes z = read_file(npz);
  const bytes members[] = {read_file(dir / "w.npy"), read_file(dir / "labels.npy")};
  const std::string names[] = {"w.npy", "labels.npy"};
  std::size_t at = 0;
  for (std::size_t k = 0; k < 2; ++k) {
    INFO("member " << names[k]);
    const bytes& m = members[k];
    REQUIRE(z.size() >= at + 30);
    CHECK(get_le(z, at, 4) == 0x04034b50u);  // local file header
    CHECK(get_le(z, at + 8, 2) == 0);        // method: stored
    const auto crc = pnn::crc32(std::as_bytes(std::span(m.data(), m.size())));
    CHECK(get_le(z, at + 14, 4) == crc);
    CHECK(get_le(z, at + 18, 4) == m.size());  // compressed size
    CHECK(get_le(z, at + 22, 4) == m.size());  // uncompressed size
    CHECK(get_le(z, at + 26, 2) == names[k].size());
    CHECK(get_le(z, at + 28, 2) == 0);
    CHECK(std::string(z.begin() + static_cast<std::ptrdiff_t>(at + 30),
                      z.begin() + static_cast<std::ptrdiff_t>(at + 30 + names[k].size())) == names[k]);
    const std::size_t data_at = at + 30 + names[k].size();
    CHECK(bytes(z.begin() + static_cast<std::ptrdiff_t>(data_at),
                z.begin() + static_cast<std::ptrdiff_t>(data_at + m.size())) == m);
    at = data_at + m.size();
  }
  // Central directory right after the members, then the 22-byte end record closing the file.
  CHECK(get_le(z, at, 4) == 0x02014b50u);
  const std::size_t end = z.size() - 22;
  CHECK(get_le(z, end, 4) == 0x06054b50u);
  CHECK(get_le(z, end + 10, 2) == 2);    // entries
  CHECK(get_le(z, end + 12, 4) == end - at);  // directory size
  CHECK(get_le(z, end + 16, 4) == at);   // directory offset

  // Same arrays, same bytes: the archive is reproducible.
  io::save_npz(dir / "again.npz", {{"w", wa}, {"labels", la}});
  CHECK(read_file(dir / "again.npz") == z);

  // An empty archive is valid too.
  io::save_npz(dir / "empty.npz", {});
  CHECK(io::load_npz(dir / "empty.npz").empty());
}

TEST_CASE("npz: Python's zipfile accepts the archive and the header is a Python literal", "[io][npy]") {
  if (std::system("command -v python3 > /dev/null 2>&1") != 0) {
    WARN("python3 not found: the zipfile check is skipped");
    return;
  }
  temp_dir dir;
  const std::vector<float> a{1, 2, 3, 4, 5, 6};
  const std::vector<std::uint64_t> b{std::numeric_limits<std::uint64_t>::max(), 0};
  const std::string npz = dir / "check.npz";
  io::save_npz(npz, {{"weights", io::make_npy(a.data(), {2, 3})}, {"counts", io::make_npy(b.data(), {2})}});
  const std::string out = dir / "out.txt";
  const std::string cmd =
      "python3 -c \"import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; "
      "print(sorted(z.namelist()))\" '" + npz + "' > '" + out + "' 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  const bytes printed = read_file(out);
  CHECK(std::string(printed.begin(), printed.end()) == "['counts.npy', 'weights.npy']\n");

  // The member's header, as NumPy's reader parses it (ast.literal_eval), and its alignment.
  const std::string header_cmd =
      "python3 -c \"import zipfile,sys,ast,struct; m=zipfile.ZipFile(sys.argv[1]).read('weights.npy'); "
      "assert m[:8]==b'\\x93NUMPY\\x01\\x00'; n=struct.unpack('<H',m[8:10])[0]; assert (10+n)%64==0; "
      "d=ast.literal_eval(m[10:10+n].decode('latin1')); "
      "assert d=={'descr':'<f4','fortran_order':False,'shape':(2,3)}, d; assert len(m)==10+n+24\" '" + npz + "'";
  CHECK(std::system(header_cmd.c_str()) == 0);

  // An archive written the way np.savez writes one (zipfile.open(..., force_zip64=True): ZIP64
  // sizes and an extra field in the local header, plain sizes in the central directory) loads.
  const std::string npy = dir / "member.npy";
  io::save_npy(npy, io::make_npy(a.data(), {3, 2}));
  const std::string like_savez = dir / "like_savez.npz";
  const std::string savez_cmd =
      "python3 -c \"import zipfile,sys; z=zipfile.ZipFile(sys.argv[1],'w'); f=z.open('m.npy','w',force_zip64=True); "
      "f.write(open(sys.argv[2],'rb').read()); f.close(); z.close()\" '" + like_savez + "' '" + npy + "'";
  REQUIRE(std::system(savez_cmd.c_str()) == 0);
  const auto loaded = io::load_npz(like_savez);
  REQUIRE(loaded.size() == 1);
  CHECK(loaded[0].first == "m");
  CHECK(loaded[0].second.shape == std::vector<std::size_t>{3, 2});
  CHECK(io::values<float>(loaded[0].second) == a);

  // The same written like np.savez_compressed (deflate) is refused by name.
  const std::string compressed = dir / "compressed.npz";
  const std::string deflate_cmd =
      "python3 -c \"import zipfile,sys; z=zipfile.ZipFile(sys.argv[1],'w',compression=zipfile.ZIP_DEFLATED); "
      "z.writestr('m.npy', open(sys.argv[2],'rb').read()); z.close()\" '" + compressed + "' '" + npy + "'";
  REQUIRE(std::system(deflate_cmd.c_str()) == 0);
  CHECK_THAT(error_of([&] { (void)io::load_npz(compressed); }),
             Contains(compressed) && Contains("m.npy") && Contains("np.savez_compressed"));
}

TEST_CASE("npy: files from other writers: big-endian, 16-byte alignment, any key order, version 2.0",
          "[io][npy]") {
  temp_dir dir;
  const std::string file = dir / "other.npy";

  // NumPy on a big-endian machine: ">f4" is converted to "<f4".
  write_file(file, npy_image("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
                             {0x3f, 0x80, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00}));
  io::npy_array a = io::load_npy(file);
  CHECK(a.dtype == "<f4");
  CHECK(io::values<float>(a) == std::vector<float>{1.0f, -2.0f});

  // Old NumPy (16-byte alignment), Python 2 longs, keys in another order, double quotes.
  bytes data;
  put_le(data, 7, 8);
  put_le(data, static_cast<std::uint64_t>(-9), 8);
  write_file(file, npy_image("{\"shape\": (2L, 1L), 'descr': '<i8', 'fortran_order': False}", data, 16));
  a = io::load_npy(file);
  CHECK(a.shape == std::vector<std::size_t>{2, 1});
  CHECK(io::values<std::int64_t>(a) == std::vector<std::int64_t>{7, -9});

  // "<u1" is the same type as "|u1".
  write_file(file, npy_image("{'descr': '<u1', 'fortran_order': False, 'shape': (3,), }", {9, 8, 7}));
  a = io::load_npy(file);
  CHECK(a.dtype == "|u1");
  CHECK(io::values<std::uint8_t>(a) == std::vector<std::uint8_t>{9, 8, 7});

  // Version 2.0: a 4-byte header length.
  bytes v2{0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0};
  std::string h = "{'descr': '<u4', 'fortran_order': False, 'shape': (1,), }";
  while ((12 + h.size() + 1) % 64 != 0) h += ' ';
  h += '\n';
  put_le(v2, h.size(), 4);
  append(v2, h);
  put_le(v2, 0xdeadbeefu, 4);
  write_file(file, v2);
  CHECK(io::values<std::uint32_t>(io::load_npy(file)) == std::vector<std::uint32_t>{0xdeadbeefu});
}

TEST_CASE("npy: every malformed file is a pnn::error naming the file and the defect", "[io][npy]") {
  temp_dir dir;
  const float v[] = {1.0f, 2.0f};
  const std::string good = dir / "good.npy";
  io::save_npy(good, io::make_npy(v, {2}));
  const bytes image = read_file(good);
  const std::string file = dir / "bad_file.npy";
  const auto load_error = [&](const bytes& b) {
    write_file(file, b);
    return error_of([&] { (void)io::load_npy(file); });
  };

  bytes wrong_magic = image;
  wrong_magic[5] = 'X';
  CHECK_THAT(load_error(wrong_magic), Contains(file) && Contains("wrong magic"));
  CHECK_THAT(load_error(bytes{'P', 'K', 3, 4}), Contains(file) && Contains("wrong magic"));
  CHECK_THAT(load_error(bytes{}), Contains(file) && Contains("empty"));

  CHECK_THAT(load_error(bytes(image.begin(), image.begin() + 8)), Contains(file) && Contains("truncated header"));
  CHECK_THAT(load_error(bytes(image.begin(), image.begin() + 60)), Contains(file) && Contains("truncated header"));
  CHECK_THAT(load_error(bytes(image.begin(), image.end() - 1)), Contains(file) && Contains("truncated data"));
  bytes trailing = image;
  trailing.push_back(0);
  CHECK_THAT(load_error(trailing), Contains(file) && Contains("trailing"));

  bytes version = image;
  version[6] = 3;
  CHECK_THAT(load_error(version), Contains(file) && Contains("version 3.0"));

  const bytes eight(8, 0);
  CHECK_THAT(load_error(npy_image("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", eight)),
             Contains(file) && Contains("fortran_order"));
  CHECK_THAT(load_error(npy_image("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", eight)),
             Contains(file) && Contains("unsupported dtype '<c8'"));
  CHECK_THAT(load_error(npy_image("{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (2,), }", eight)),
             Contains(file) && Contains("structured"));
  CHECK_THAT(load_error(npy_image("{'descr': '<f4', 'fortran_order': False}", eight)),
             Contains(file) && Contains("'shape'"));
  CHECK_THAT(load_error(npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", eight)),
             Contains(file) && Contains("malformed header"));
  CHECK_THAT(load_error(npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", eight)),
             Contains(file) && Contains("unexpected key 'x'"));
  CHECK_THAT(load_error(npy_image("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999, "
                                  "99999999999, 99999999999), }",
                                  eight)),
             Contains(file) && Contains("overflows"));

  const std::string missing = dir / "no_such_file.npy";
  CHECK_THAT(error_of([&] { (void)io::load_npy(missing); }), Contains(missing) && Contains("no such file"));
  CHECK_THAT(error_of([&] { (void)io::load_npz(missing); }), Contains(missing) && Contains("no such file"));
}

TEST_CASE("npz: corrupt, truncated, compressed and foreign archives are pnn::errors naming file and member",
          "[io][npy]") {
  temp_dir dir;
  const std::vector<float> a{1, 2, 3, 4};
  const std::vector<std::uint8_t> b{7, 8};
  const std::string good = dir / "good.npz";
  io::save_npz(good, {{"first", io::make_npy(a.data(), {4})}, {"second", io::make_npy(b.data(), {2})}});
  const bytes z = read_file(good);
  const std::string file = dir / "bad_archive.npz";
  const auto load_error = [&](const bytes& image) {
    write_file(file, image);
    return error_of([&] { (void)io::load_npz(file); });
  };

  // A flipped bit in the last data byte of member "first" (its 16 data bytes end at 30 + 9 + 128 + 16).
  bytes flipped = z;
  flipped[30 + 9 + 128 + 15] ^= 0x01;
  CHECK_THAT(load_error(flipped), Contains(file) && Contains("first.npy") && Contains("CRC-32 mismatch"));

  CHECK_THAT(load_error(bytes(z.begin(), z.end() - 1)), Contains(file) && Contains("not a ZIP archive"));
  CHECK_THAT(load_error(bytes(z.begin(), z.begin() + 100)), Contains(file) && Contains("not a ZIP archive"));
  CHECK_THAT(load_error(bytes(z.begin(), z.begin() + 10)), Contains(file) && Contains("truncated"));

  // Method 8 (deflate) in the local and the central header, as np.savez_compressed writes.
  bytes deflated = z;
  deflated[8] = 8;
  const std::size_t central = get_le(z, z.size() - 22 + 16, 4);
  deflated[central + 10] = 8;
  CHECK_THAT(load_error(deflated), Contains(file) && Contains("first.npy") && Contains("compressed"));

  // A member that is not a .npy file.
  bytes renamed = z;
  renamed[30 + 6] = 't';  // local "first.npy" -> "first.tpy"
  renamed[central + 46 + 6] = 't';
  CHECK_THAT(load_error(renamed), Contains(file) && Contains("first.tpy") && Contains("not a .npy"));

  // A member whose .npy image is itself malformed (CRC recomputed so only the content is wrong).
  bytes fortran = z;
  const std::string from = "'fortran_order': False", to = "'fortran_order': True ";
  const auto text_at = std::search(fortran.begin(), fortran.end(), from.begin(), from.end());
  REQUIRE(text_at != fortran.end());
  std::copy(to.begin(), to.end(), text_at);
  const auto crc = pnn::crc32(std::as_bytes(std::span(fortran.data() + 39, 128 + 16)));
  for (std::size_t i = 0; i < 4; ++i) {
    fortran[14 + i] = static_cast<unsigned char>(crc >> (8 * i));
    fortran[central + 16 + i] = static_cast<unsigned char>(crc >> (8 * i));
  }
  CHECK_THAT(load_error(fortran), Contains(file) && Contains("first.npy") && Contains("fortran_order"));

  // A .npy handed to load_npz.
  const float v[] = {1.0f};
  const std::string npy = dir / "single.npy";
  io::save_npy(npy, io::make_npy(v, {1}));
  CHECK_THAT(error_of([&] { (void)io::load_npz(npy); }), Contains(npy) && Contains("load_npy"));
}

TEST_CASE("npy: saving is atomic: a failed save throws, keeps the old file and leaves no temporary",
          "[io][npy]") {
  temp_dir dir;
  const std::vector<double> first{1, 2, 3}, second{4, 5};
  const io::npy_array a = io::make_npy(first.data(), {3});
  const io::npy_array b = io::make_npy(second.data(), {2});
  const auto entries = [&] {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()));
  };

  // The directory does not exist.
  const std::string nowhere = (dir.path / "no_such_dir" / "x.npy").string();
  CHECK_THAT(error_of([&] { io::save_npy(nowhere, a); }), Contains(nowhere));
  CHECK_THAT(error_of([&] { io::save_npz(nowhere, {{"a", a}}); }), Contains(nowhere));
  CHECK(entries() == 0);

  // The target is a directory: the temporary is written, the rename fails, the temporary goes.
  const std::string target_dir = dir / "occupied.npy";
  fs::create_directory(target_dir);
  CHECK_THAT(error_of([&] { io::save_npy(target_dir, a); }), Contains(target_dir) && Contains("rename"));
  CHECK_THAT(error_of([&] { io::save_npz(target_dir, {{"a", a}}); }), Contains(target_dir) && Contains("rename"));
  CHECK(entries() == 1);
  CHECK(fs::is_directory(target_dir));

  // Overwriting replaces the file whole; a rejected array leaves the old one in place.
  const std::string file = dir / "x.npy";
  io::save_npy(file, a);
  io::save_npy(file, b);
  CHECK(io::values<double>(io::load_npy(file)) == second);
  io::npy_array broken = a;
  broken.data.resize(5);
  CHECK_THAT(error_of([&] { io::save_npy(file, broken); }), Contains(file) && Contains("5 bytes"));
  broken = a;
  broken.dtype = "<c8";
  CHECK_THAT(error_of([&] { io::save_npy(file, broken); }), Contains(file) && Contains("unsupported dtype"));
  CHECK(io::values<double>(io::load_npy(file)) == second);

  const std::string npz = dir / "x.npz";
  io::save_npz(npz, {{"a", a}});
  CHECK_THAT(error_of([&] { io::save_npz(npz, {{"a", a}, {"a", b}}); }), Contains(npz) && Contains("twice"));
  CHECK_THAT(error_of([&] { io::save_npz(npz, {{"", a}}); }), Contains(npz) && Contains("empty name"));
  CHECK_THAT(error_of([&] { io::save_npz(npz, {{"b", broken}}); }), Contains(npz) && Contains("'b'"));
  const auto kept = io::load_npz(npz);
  REQUIRE(kept.size() == 1);
  CHECK(io::values<double>(kept[0].second) == first);
  CHECK(entries() == 3);  // occupied.npy/, x.npy, x.npz: no temporaries
}

}  // namespace tests_npy
