"""`python -m rag_app.cli …` (also what `torchrun -m rag_app.cli finetune …` runs)."""

from rag_app.cli import main

main()
