# probe — build, test, bench.  `make help` lists the targets.
#
# Everything comes from Debian packages (`make deps`).  BLAS is OpenBLAS,
# linked as GSL's CBLAS (-lgsl -lopenblas, never the slow -lgslcblas).

CC      ?= cc
OPT     ?= -O3 -march=native
CFLAGS  ?= $(OPT) -g
PKGS    := hdf5 jansson libpcre2-8 gsl
CPPFLAGS += -I. -D_GNU_SOURCE $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
XCFLAGS := -std=c11 -Wall -Wextra -Wno-unused-parameter -fopenmp
LDLIBS  := $(shell pkg-config --libs hdf5 jansson libpcre2-8 2>/dev/null) -lgsl -lopenblas -lcsv -lm
BUILD   ?= build
SHARED  ?= $(abspath ../shared)
PY      := /usr/bin/python3

DEBS := build-essential pkg-config libgsl-dev libopenblas-dev libhdf5-dev hdf5-tools \
        libcsv-dev libjansson-dev libpcre2-dev libcriterion-dev \
        python3-numpy python3-h5py python3-pandas time

LIB_SRC  := $(wildcard core/*.c analysis/*.c)
CLI_SRC  := $(wildcard probe/*.c)
TEST_SRC := $(wildcard tests/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))

.PHONY: all test asan-test bench deps help clean format

all: $(BUILD)/probe

help:
	@echo "make            build $(BUILD)/probe"
	@echo "make deps       install the Debian packages probe needs (as root)"
	@echo "make test       run the test suite (needs ../shared, or SHARED=path)"
	@echo "make asan-test  the test suite under AddressSanitizer + UBSan"
	@echo "make bench      benchmarks (figures go in README's Performance section)"
	@echo "make format     clang-format the sources"

deps:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "deps: all present"; fi

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(XCFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/probe: $(CLI_OBJ) $(LIB_OBJ)
	$(CC) $(XCFLAGS) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/test_probe: $(TEST_OBJ) $(LIB_OBJ)
	$(CC) $(XCFLAGS) $(CFLAGS) $^ -o $@ $(LDLIBS) -lcriterion

$(BUILD)/bench/%: bench/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(XCFLAGS) $(CFLAGS) $^ -o $@ $(LDLIBS)

# Tests find the binary, the shared files and python through the environment.
test: $(BUILD)/probe $(BUILD)/test_probe
	PROBE_BIN=$(abspath $(BUILD)/probe) PROBE_SHARED=$(SHARED) PROBE_PY=$(PY) \
	  $(BUILD)/test_probe --jobs 2 $(TESTFLAGS)

asan-test:
	$(MAKE) BUILD=build-asan OPT="-O1 -fno-omit-frame-pointer -fsanitize=address,undefined" \
	  test

bench: $(BUILD)/probe $(BENCH_BIN)
	PROBE_BIN=$(abspath $(BUILD)/probe) PROBE_SHARED=$(SHARED) PROBE_PY=$(PY) BUILD=$(BUILD) \
	  bash bench/run.sh

format:
	clang-format -i core/*.[ch] analysis/*.[ch] probe/*.[ch] tests/*.[ch] bench/*.c

clean:
	rm -rf build build-asan

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
