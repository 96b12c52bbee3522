// Prints what a process can learn of the machine's uptime, one "name seconds" per line:
// CLOCK_MONOTONIC, CLOCK_BOOTTIME and CLOCK_MONOTONIC_RAW (through the vDSO, as programs
// read them, and through the syscall), /proc/uptime, sysinfo's uptime and the process's own
// start time from /proc/self/stat. sandbox_clock.sh runs it inside husk.
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace {

double Seconds(const timespec& ts) {
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::string Read(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int main() {
  for (auto [name, clock] :
       {std::pair{"monotonic", CLOCK_MONOTONIC}, std::pair{"boottime", CLOCK_BOOTTIME},
        std::pair{"monotonic_raw", CLOCK_MONOTONIC_RAW}}) {
    timespec vdso{}, sys{};
    clock_gettime(clock, &vdso);
    syscall(SYS_clock_gettime, clock, &sys);
    printf("%s %.3f\n%s_syscall %.3f\n", name, Seconds(vdso), name, Seconds(sys));
  }
  double up = -1;
  sscanf(Read("/proc/uptime").c_str(), "%lf", &up);
  printf("proc_uptime %.3f\n", up);
  struct sysinfo si {};
  sysinfo(&si);
  printf("sysinfo_uptime %ld\n", si.uptime);
  const std::string stat = Read("/proc/self/stat");
  std::istringstream in(stat.substr(stat.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 22 && in >> field; i++) {
  }
  printf("starttime %.3f\n", std::stod(field) / static_cast<double>(sysconf(_SC_CLK_TCK)));
  return 0;
}
