// cxx_exceptions.cpp: C++ exceptions across frames, RAII unwinding, std::string/vector, static ctor/dtor.
//
// In the static-PIE build the unwinder finds PT_GNU_EH_FRAME through
// dl_iterate_phdr, i.e. through AT_PHDR; the static non-PIE build has no
// PT_GNU_EH_FRAME and registers .eh_frame from crtbeginT.o instead.  Static
// constructors need .init_array; the destructor runs from __cxa_atexit.
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Announcer {
    std::string name;
    explicit Announcer(const char *n) : name(n) { std::cout << "static ctor: " << name << "\n"; }
    ~Announcer() { std::cout << "static dtor: " << name << std::endl; }
};

Announcer announcer("global");

int live_guards = 0;

struct Guard { // counts how many are alive, to check unwinding runs destructors
    Guard() { ++live_guards; }
    ~Guard() { --live_guards; }
};

struct CustomError {
    int code;
    std::string what;
};

[[gnu::noinline]] int level3(int n)
{
    Guard g;
    if (n == 1)
        throw std::runtime_error("runtime_error from level3");
    if (n == 2)
        throw CustomError{42, "custom error from level3"};
    if (n == 3)
        throw 7;
    return n * 10;
}

[[gnu::noinline]] int level2(int n)
{
    Guard g;
    std::vector<std::string> v{"a", "b", "c"};
    return level3(n) + static_cast<int>(v.size());
}

[[gnu::noinline]] int level1(int n)
{
    Guard g;
    try {
        return level2(n);
    } catch (int i) {
        std::cout << "level1 caught int " << i << ", rethrowing as logic_error\n";
        throw std::logic_error("converted from int " + std::to_string(i));
    }
}

} // namespace

int main()
{
    std::vector<std::string> log;
    for (int n = 0; n <= 3; n++) {
        try {
            int r = level1(n);
            log.push_back("n=" + std::to_string(n) + ": returned " + std::to_string(r));
        } catch (const std::runtime_error &e) {
            log.push_back("n=" + std::to_string(n) + ": caught runtime_error: " + e.what());
        } catch (const CustomError &e) {
            log.push_back("n=" + std::to_string(n) + ": caught CustomError " + std::to_string(e.code) +
                          ": " + e.what);
        } catch (const std::exception &e) {
            log.push_back("n=" + std::to_string(n) + ": caught std::exception: " + e.what());
        }
        log.back() += live_guards == 0 ? " (guards unwound ok)" : " (guards LEAKED)";
    }

    // An exception thrown by the library itself.
    try {
        std::vector<int> v(3);
        (void)v.at(10);
        log.push_back("vector::at did not throw");
    } catch (const std::out_of_range &) {
        log.push_back("vector::at threw out_of_range");
    }

    // catch (...) and rethrow through a nested handler.
    try {
        try {
            throw CustomError{-1, "inner"};
        } catch (...) {
            log.push_back("catch(...) caught, rethrowing");
            throw;
        }
    } catch (const CustomError &e) {
        log.push_back("outer caught rethrown CustomError " + e.what);
    }

    for (const std::string &s : log)
        std::cout << s << "\n";
    std::cout << "entries: " << log.size() << ", live guards: " << live_guards << "\n";
    return live_guards == 0 ? 0 : 1;
}
