// Result<T>: a value or a Linux errno. The sentry's handlers and the gofer
// client return it; absl::Status stays in the control plane (CLI, gofer server).
#ifndef HUSK_BASE_RESULT_H_
#define HUSK_BASE_RESULT_H_

#include <cerrno>
#include <exception>
#include <utility>
#include <variant>

namespace husk {

// A positive Linux errno value (ENOENT, EFAULT, ...).
struct Errno {
  int value;
};

// Thrown when a caller takes the value of a failed Result (or the error of
// a successful one) without checking ok(): a bug, but one an application
// must not be able to turn into a crash. The sentry's syscall boundary and
// the gofer's request loop catch it, log it as a bug, and fail that one
// call with the errno the unchecked operation returned.
struct UncheckedResult : std::exception {
  explicit UncheckedResult(int e) : err(e) {}
  const char* what() const noexcept override { return "value of a failed Result taken unchecked"; }
  int err;  // the operation's errno (EIO when the Result held a value)
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::move(v)) {}  // NOLINT(google-explicit-constructor)
  Result(Errno e) : v_(e) {}         // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  int error() const {
    if (ok()) throw UncheckedResult(EIO);
    return std::get<1>(v_).value;
  }
  T& value() & {
    Check();
    return std::get<0>(v_);
  }
  const T& value() const& {
    Check();
    return std::get<0>(v_);
  }
  // On a temporary the value is moved out and returned by value, so
  // `for (auto& x : F().value())` cannot dangle.
  T value() && {
    Check();
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T operator*() && { return std::move(*this).value(); }

 private:
  void Check() const {
    if (!ok()) throw UncheckedResult(std::get<1>(v_).value);
  }
  std::variant<T, Errno> v_;
};

// Result of an operation that yields nothing but may fail.
struct Unit {};
using Status = Result<Unit>;
inline Status Ok() { return Unit{}; }

}  // namespace husk

#define HUSK_CONCAT_INNER_(a, b) a##b
#define HUSK_CONCAT_(a, b) HUSK_CONCAT_INNER_(a, b)

// TRY(expr): evaluates a Result; on error returns Errno from the enclosing
// function, otherwise yields nothing. ASSIGN_OR_RETURN(lhs, expr) binds the value.
#define TRY(expr)                                                 \
  do {                                                            \
    auto husk_try_r_ = (expr);                                    \
    if (!husk_try_r_.ok()) return ::husk::Errno{husk_try_r_.error()}; \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(HUSK_CONCAT_(husk_aor_, __LINE__), lhs, expr)
// NOLINTBEGIN(bugprone-macro-parentheses): tmp is a name and lhs may be a declaration.
#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr)               \
  auto tmp = (expr);                                         \
  if (!tmp.ok()) return ::husk::Errno{tmp.error()};          \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)

#endif  // HUSK_BASE_RESULT_H_
