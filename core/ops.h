// The public functional API: one header per op family.
#pragma once

#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/movement.h"
#include "core/ops/reduce.h"
