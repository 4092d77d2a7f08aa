"""Thin adapters for LlamaIndex (`laser_rag.integrations.llama_index`) and LangChain
(`laser_rag.integrations.langchain`). Each module imports its framework; import the one you use."""
