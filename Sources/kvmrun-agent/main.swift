// Placeholder until the agent's main lands (next commit).
