#pragma once
// A latency histogram in the manner of HdrHistogram: log-linear buckets (64
// per power of two above 128, so under 1.6 % error), fixed memory (60 KB), no
// allocation per sample.

#include <array>
#include <bit>
#include <cstdint>

namespace chat::bench {

class Histogram {
  public:
    static constexpr int sub_bits = 7;
    static constexpr int sub_count = 1 << sub_bits;  // values below this are exact
    static constexpr int magnitudes = 64 - sub_bits;

    void record(std::uint64_t value) noexcept {
        ++counts_[index(value)];
        ++total_;
        if (value > max_) {
            max_ = value;
        }
    }

    void merge(const Histogram& other) noexcept {
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            counts_[i] += other.counts_[i];
        }
        total_ += other.total_;
        if (other.max_ > max_) {
            max_ = other.max_;
        }
    }

    std::uint64_t count() const noexcept { return total_; }
    std::uint64_t max() const noexcept { return max_; }

    /// The value at quantile q (0..1): the upper edge of its bucket, at most max().
    std::uint64_t quantile(double q) const noexcept {
        if (total_ == 0) {
            return 0;
        }
        const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_ - 1)) + 1;
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= rank) {
                const auto upper = upper_edge(i);
                return upper < max_ ? upper : max_;
            }
        }
        return max_;
    }

  private:
    // Below sub_count: one bucket per value. Above: the value's top sub_bits
    // bits (sub, in [sub_count/2, sub_count)) and how far they were shifted.
    static std::size_t index(std::uint64_t value) noexcept {
        if (value < sub_count) {
            return static_cast<std::size_t>(value);
        }
        const int shift = static_cast<int>(std::bit_width(value)) - sub_bits;  // >= 1
        const auto sub = value >> shift;
        return static_cast<std::size_t>(shift) * sub_count + static_cast<std::size_t>(sub);
    }
    static std::uint64_t upper_edge(std::size_t index) noexcept {
        const auto shift = index / sub_count;
        const std::uint64_t sub = index % sub_count;
        return shift == 0 ? sub : ((sub + 1) << shift) - 1;
    }

    std::array<std::uint64_t, std::size_t{magnitudes + 1} * sub_count> counts_{};
    std::uint64_t total_ = 0;
    std::uint64_t max_ = 0;
};

}  // namespace chat::bench
