"""Pure business rules of EvPower: money, energy, tariffs, ledger postings, states. No I/O."""
