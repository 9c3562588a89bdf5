// The public functional API: one header per op family.
#pragma once

#include "core/ops/creation.h"
#include "core/ops/dropout.h"
#include "core/ops/elementwise.h"
#include "core/ops/index.h"
#include "core/ops/matmul.h"
#include "core/ops/movement.h"
#include "core/ops/norm.h"
#include "core/ops/reduce.h"
#include "core/ops/segment.h"
#include "core/ops/softmax.h"
