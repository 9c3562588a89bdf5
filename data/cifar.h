// CIFAR-10 and CIFAR-100 in their binary version (data_batch_1.bin, ..., train.bin, test.bin).
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"

namespace basin::data {

/// The records of the given CIFAR binary files, in order (plain or gzip-compressed). A CIFAR-10
/// record is 1 label byte (0-9) and 3072 pixel bytes; a CIFAR-100 record is a coarse label byte
/// (0-19), a fine label byte (0-99) and 3072 pixel bytes. The pixels are the red, green and blue
/// 32×32 planes, row-major. Item i is {"image": f32 (3, 32, 32) in [0, 1], "label": i64 ()}, the
/// label being the fine one for CIFAR-100, which also has "coarse_label": i64 (). `variant` is 10
/// or 100. A file that is not a whole, non-zero number of records or holds a label out of range
/// is an error naming the file (and the record).
DatasetPtr<Example> cifar(const std::vector<std::string>& files, int variant = 10);

}  // namespace basin::data
