namespace RlMixup.Models;
