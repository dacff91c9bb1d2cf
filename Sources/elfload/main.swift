// elfload's executable: everything lives in ElfloadCLI so that tests can reach it.
import ElfloadCLI

Elfload.main()
