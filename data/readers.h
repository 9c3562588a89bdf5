// The file readers of basin::data: IDX (MNIST), CIFAR binary, and images (PNG/JPEG/BMP, folders).
#pragma once

#include "data/cifar.h"
#include "data/idx.h"
#include "data/image.h"
