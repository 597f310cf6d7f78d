// PPO-Clip with Stable-Baselines3 semantics lands here (see the PPO agent work item).
namespace RlMixup.Ppo;
