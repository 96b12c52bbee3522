#ifndef HUSK_CLI_COMMANDS_H_
#define HUSK_CLI_COMMANDS_H_

namespace husk::cli {

int DoMain(int argc, char** argv);
int BootCommand(int argc, char** argv, char** full_argv);
int GoferCommand(int argc, char** argv);
int SyscallsCommand();
const char* Release();

}  // namespace husk::cli

#endif  // HUSK_CLI_COMMANDS_H_
