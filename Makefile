# nabla - two commands: `make run` and `make test`. Everything else is CMake underneath.
#
#   make run       install missing Debian packages (as root), build, run the main job
#   make test      build and run the whole ctest suite
#   make sanitize  the suite again under AddressSanitizer + UBSan, in build-sanitize/
#   make tsan      the threaded tests under ThreadSanitizer (clang + LLVM libomp), in build-tsan/
#   make valgrind  valgrind memcheck over the core tests
#   make bench     benchmarks
#   make install   install into PREFIX (default /usr/local)

BUILD    ?= build
SANITIZE ?= build-sanitize
TSAN     ?= build-tsan
JOBS     ?= 2
PREFIX   ?= /usr/local
CMAKE_FLAGS ?=

.PHONY: all deps build run test sanitize tsan valgrind bench install clean format fuzz fuzz-ci

all: build

deps:
	@sh scripts/install-deps.sh build plot mpi

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# The main job: the default MLP on Fashion-MNIST (the spirals set when the data set cannot be
# installed), saved with its metrics and plot, then evaluated.
RUN_DIR ?= runs/default
run: build
	@sh scripts/install-deps.sh data || true
	@mkdir -p $(RUN_DIR)
	./$(BUILD)/nabla train --save $(RUN_DIR)/model.safetensors \
		--metrics $(RUN_DIR)/metrics.jsonl --plot $(RUN_DIR)/curves.png
	./$(BUILD)/nabla eval --model $(RUN_DIR)/model.safetensors

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

sanitize: deps
	cmake -S . -B $(SANITIZE) -DCMAKE_BUILD_TYPE=Debug -DNABLA_SANITIZE=ON $(CMAKE_FLAGS)
	cmake --build $(SANITIZE) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --test-dir $(SANITIZE) --output-on-failure -j $(JOBS)

# ThreadSanitizer over the threaded tests (ctest label `threads`; TSAN_CTEST= runs the whole
# suite). clang, because its OpenMP runtime (LLVM libomp) tells TSan about its barriers through
# libarcher; gcc's libgomp cannot, and every OpenMP region would report a false race. The tests
# run with halt_on_error=1 (tests/CMakeLists.txt): a race fails the target.
TSAN_CTEST ?= -L threads
tsan:
	@sh scripts/install-deps.sh build tsan
	CC=clang cmake -S . -B $(TSAN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNABLA_TSAN=ON $(CMAKE_FLAGS)
	cmake --build $(TSAN) -j $(JOBS)
	ctest --test-dir $(TSAN) --output-on-failure -j $(JOBS) $(TSAN_CTEST)

# valgrind memcheck over the core tests (Release build): zero errors, zero leaks
valgrind: build
	@sh scripts/install-deps.sh sanitize
	sh scripts/valgrind.sh $(BUILD)

# The benchmarks, with the epoch of the default recipe against PyTorch's when Fashion-MNIST and
# python3-torch are installed (as root, make bench installs them; without them it says so).
bench: build
	@sh scripts/install-deps.sh data bench || true
	sh scripts/bench.sh ./$(BUILD)/nabla $(BUILD)/bench

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# libFuzzer harnesses for the readers (fuzz/, clang), in build-fuzz/: each for FUZZ_SECONDS;
# fuzz-ci is the short run CI does. A crash fails the target and names the saved input.
FUZZ_SECONDS ?= 60
fuzz:
	@sh scripts/install-deps.sh build fuzz
	sh scripts/fuzz.sh $(FUZZ_SECONDS)

fuzz-ci:
	@sh scripts/install-deps.sh build fuzz
	sh scripts/fuzz.sh 30

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(SANITIZE) $(TSAN) build-fuzz
