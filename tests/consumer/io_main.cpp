// A consumer of the optional ember::io: gzip and PNG through zlib, linked via ember::io.
#include <ember/io/gzip.hpp>
#include <ember/io/png.hpp>

#include <cstdio>
#include <string>
#include <vector>
#include <unistd.h>

int main() {
  std::vector<uint8_t> text(5000);
  for (size_t i = 0; i < text.size(); ++i) text[i] = uint8_t("ember::io "[i % 10]);
  const std::vector<uint8_t> gz = ember::io::gzip_compress(text.data(), text.size());
  if (ember::io::gunzip(gz.data(), gz.size()) != text || gz.size() * 10 > text.size()) return 1;
  const std::vector<uint8_t> px = {0, 64, 128, 192, 255, 7};
  const std::string png = "consumer_io_" + std::to_string(::getpid()) + ".png";
  ember::io::write_png_gray(png, px.data(), 3, 2);
  int w = 0, h = 0;
  const std::vector<uint8_t> back = ember::io::read_png_gray(png, &w, &h);
  std::remove(png.c_str());
  if (back != px || w != 3 || h != 2) return 1;
  std::printf("consumer_io: gzip %zu -> %zu bytes and a 3x2 PNG round trip\n", text.size(), gz.size());
  return 0;
}
